"""``check_target`` / ``render_report``: what ``orchestrator check`` prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.check import check_target, first_point, render_report
from core.config import load_sweep
from core.errors import InputError
from tests.adapters.conftest import sweep_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SWEEPS = ["qaoa_maxcut", "ghz_noise", "vqe_h2", "repetition_code", "cross_project"]
PROJECTS = ["qaoa_maxcut", "ghz_noise", "vqe_h2", "repetition_code"]


@pytest.mark.parametrize("name", SWEEPS)
def test_every_example_sweep_passes(name: str) -> None:
    reports, ok = check_target(str(EXAMPLES / "sweeps" / f"{name}.yaml"))
    text = "\n".join(render_report(r) for r in reports)
    assert ok, text
    for report in reports:
        assert [c.name for c in report.checks] == [
            "project folder",
            "environment",
            "entry found",
            "signature",
            "dry run",
        ]
        assert report.dry_run is not None and report.dry_run.metrics
        assert report.code_version.startswith(("git:", "sha:"))
    assert "verdict: PASS" in text


@pytest.mark.parametrize("name", PROJECTS)
def test_every_example_project_folder_passes(name: str) -> None:
    reports, ok = check_target(str(EXAMPLES / "projects" / name))
    assert ok, render_report(reports[0])


def test_the_report_shows_the_dry_run_and_the_environment() -> None:
    reports, _ = check_target(str(EXAMPLES / "sweeps" / "vqe_h2.yaml"))
    text = render_report(reports[0])
    assert "virtualenv" in text and "energy=" in text and " s\n" in text
    assert "dry-run parameters: {'theta': -0.5, 'bond_length': 0.5, 'shots': 2000}" in text


def test_signature_mismatch_against_the_sweep(tmp_path: Path) -> None:
    sweep = sweep_file(
        tmp_path,
        "name: s\nprojects:\n  - {name: p, path: p, entry: 'm:run'}\nparameters:\n  shots: [1]\n",
        "p",
    )
    (tmp_path / "p" / "m.py").write_text("def run(gamma, beta=0.1):\n    return gamma\n")
    reports, ok = check_target(str(sweep))
    assert not ok
    detail = next(c.detail for c in reports[0].checks if c.name == "signature")
    assert "missing: gamma" in detail and "unexpected: shots" in detail
    assert reports[0].dry_run is None  # no point running what cannot fit


@pytest.mark.parametrize(
    "path, message",
    [
        ("does/not/exist", "no such project folder"),
        (str(EXAMPLES / "projects" / "bell"), "no orchestrator-project.yaml"),
    ],
)
def test_bad_input_raises_input_error(path: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_target(path)


def test_invalid_project_settings_name_the_field(tmp_path: Path) -> None:
    (tmp_path / "orchestrator-project.yaml").write_text("entry: m:f\ntimeot: 3\n")
    with pytest.raises(InputError) as info:
        check_target(str(tmp_path))
    assert info.value.field == "timeot"


def test_first_point_respects_constraints(tmp_path: Path) -> None:
    text = "name: s\nprojects:\n  - {name: p, path: p, entry: 'm:f'}\nparameters:\n  a: [1, 2, 3]\n"
    sweep = sweep_file(tmp_path, text + "constraints:\n  parameters: ['a >= 2']\n", "p")
    assert first_point(load_sweep(sweep)) == {"a": 2}
