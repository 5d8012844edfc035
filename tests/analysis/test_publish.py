"""The report written when a sweep completes: never a traceback for a sweep with nothing to report."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.publish import on_sweep_completed


def test_a_completed_sweep_whose_folder_is_gone_gets_a_warning_not_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="analysis.publish"):
        assert on_sweep_completed(tmp_path, "gone-0123456789") is None
    (record,) = [r for r in caplog.records if "gone-0123456789" in r.getMessage()]
    assert record.levelname == "WARNING" and record.exc_info is None
    assert "no results for 'gone-0123456789'" in record.getMessage()
