"""Every broken fixture project yields a FAILED result with the right class, naming project and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapters import adapt_project
from adapters.check import check_target, render_report
from core.config import load_sweep
from core.models import ExperimentStatus

BROKEN = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "broken_projects"
EXPECTED = yaml.safe_load((BROKEN / "expected.yaml").read_text())
SWEEP = load_sweep(BROKEN / "sweep.yaml")
CASES = [(spec, x) for spec in SWEEP.projects for x in (0.2, 0.9)]


@pytest.mark.parametrize("spec, x", CASES, ids=[f"{s.name}-{x}" for s, x in CASES])
def test_each_point_completes_or_fails_as_expected(spec, x: float) -> None:
    expected = EXPECTED[spec.name]
    result = adapt_project(spec.path, spec).execute_with_parameters({"x": x})  # exactly what the worker calls
    if expected[x] == "completed":
        assert result.status == ExperimentStatus.COMPLETED, result.error_message
        assert result.metrics and result.error_class is None
        return
    assert result.status == ExperimentStatus.FAILED
    assert result.error_class == expected[x]
    assert f"'{spec.name}'" in result.error_message
    assert expected["fix"] in result.error_message
    assert result.metrics == {} and result.project_name == spec.name and result.parameters == {"x": x}
    assert len(result.log) <= 4200


def test_the_exception_inside_keeps_the_projects_output_and_traceback() -> None:
    spec = next(s for s in SWEEP.projects if s.name == "exception_inside")
    result = adapt_project(spec.path, spec).execute_with_parameters({"x": 0.9})
    assert "starting solver at x=0.9" in result.log and "step size looks large" in result.log
    assert 'model.py", line' in result.log and "adapters/" not in result.log
    assert "model.py:" in result.error_message  # where it was raised


def test_the_hanging_command_keeps_its_stderr() -> None:
    spec = next(s for s in SWEEP.projects if s.name == "hanging_command")
    result = adapt_project(spec.path, spec).execute_with_parameters({"x": 0.9})
    assert "waiting for a lock that never comes" in result.log
    assert result.execution_time < 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_check_on_each_fixture_folder(name: str) -> None:
    reports, ok = check_target(str(BROKEN / name))
    text = render_report(reports[0])
    assert ok == (name == "healthy"), text
    assert text.rstrip().endswith("PASS" if ok else "FAIL")
    if not ok:
        failed = [c.detail for c in reports[0].checks if not c.ok]
        assert len(failed) == 1
        assert f"'{name}'" in failed[0] or "missing: alpha" in failed[0]


def test_check_on_the_broken_sweep_fails_overall() -> None:
    reports, ok = check_target(str(BROKEN / "sweep.yaml"))
    assert not ok
    # the dry run is the sweep's first point, x = 0.2, where some projects still work
    assert {r.project: r.ok for r in reports} == {name: e[0.2] == "completed" for name, e in EXPECTED.items()}
