"""One contract, every adapter kind: what the worker relies on when it calls execute_with_parameters."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters import ProjectAdapter, adapt_project
from core.models import ExperimentResult, ExperimentStatus
from core.project import ProjectSpec

SOURCE = """
import json, sys


def run(x):
    print("hello from run")
    if x < 0:
        raise ArithmeticError("negative x")
    return {"y": x}


class Model:
    def __init__(self, scale=1.0):
        self.scale = scale

    def run(self, x):
        print("hello from Model")
        if x < 0:
            raise ArithmeticError("negative x")
        return {"y": x * self.scale}


def build(params):
    from braket.circuits import Circuit  # here, so the other kinds' subprocesses skip the import

    print("hello from build")
    if params["x"] < 0:
        raise ArithmeticError("negative x")
    return Circuit().x(0) if params["x"] else Circuit().i(0)


def analyze(result, params):
    return {"y": result.measurement_counts.get("1", 0) / sum(result.measurement_counts.values())}


if __name__ == "__main__":
    x = float(sys.argv[1])
    print("hello from main", file=sys.stderr)
    if x < 0:
        raise ArithmeticError("negative x")
    print(json.dumps({"y": x}))
"""

KINDS: dict[str, dict[str, Any]] = {
    "callable": {"entry": "proj:run"},
    "callable-subprocess": {"entry": "proj:run", "isolation": "subprocess"},
    "class": {"entry": "proj:Model"},
    "command": {"entry": "python proj.py {x}"},
    "circuit": {"circuit": {"build": "proj:build", "analyze": "proj:analyze"}, "fixed": {"shots": 10}},
}


@pytest.fixture(params=sorted(KINDS))
def adapter(request: pytest.FixtureRequest, make_project: Callable[..., Path]) -> ProjectAdapter:
    root = make_project("proj", {"proj.py": SOURCE})
    spec = ProjectSpec.model_validate({"name": "contract", "path": str(root), **KINDS[request.param]})
    return adapt_project(root, spec)


def check_result(result: ExperimentResult, params: dict[str, Any]) -> None:
    assert result.project_name == "contract" and result.parameters == params
    assert result.experiment_id == "" and result.execution_time > 0
    # crosses the broker as JSON: everything in it must survive a JSON round trip
    assert ExperimentResult.model_validate(json.loads(result.model_dump_json())) == result
    assert len(result.log) <= 4200


def test_success(adapter: ProjectAdapter) -> None:
    result = adapter.execute_with_parameters({"x": 1})
    check_result(result, {"x": 1})
    assert result.status == ExperimentStatus.COMPLETED and result.error_class is None, result.error_message
    assert result.metrics == {"y": 1.0} and "hello from" in result.log
    assert result.extra["kind"] == adapter.kind


def test_failure_is_a_result_not_an_exception(adapter: ProjectAdapter) -> None:
    result = adapter.execute_with_parameters({"x": -1})
    check_result(result, {"x": -1})
    assert result.status == ExperimentStatus.FAILED and result.metrics == {}
    assert result.error_class == "scientific"
    assert "'contract'" in result.error_message and "negative x" in result.error_message
    assert "negative x" in result.log


def test_signature_and_check(adapter: ProjectAdapter) -> None:
    report = adapter.validate_compatibility(["x"], {"x": 1})
    assert report.ok, report.checks
    assert report.dry_run is not None and report.dry_run.metrics == {"y": 1.0}


def test_an_entryless_spec_fails_each_run(tmp_path: Path) -> None:
    spec = ProjectSpec(name="empty", path=tmp_path)
    adapter = adapt_project(tmp_path, spec)
    result = adapter.execute_with_parameters({"x": 1})
    assert result.status == ExperimentStatus.FAILED and result.error_class == "configuration"
    assert "'empty'" in result.error_message and "set it to module:function" in result.error_message
    assert not adapter.validate_compatibility(["x"], {"x": 1}).ok


def test_sys_exit_inside_a_project_does_not_stop_the_worker(make_project: Callable[..., Path]) -> None:
    root = make_project("quits", {"q.py": "import sys\ndef run():\n    sys.exit(2)\n"})
    result = adapt_project(root, ProjectSpec(name="quits", path=root, entry="q:run")).execute_with_parameters(
        {}
    )
    assert result.status == ExperimentStatus.FAILED and "SystemExit" in result.error_message
    result = adapt_project(
        root, ProjectSpec(name="quits", path=root, entry="q:run", isolation="subprocess")
    ).execute_with_parameters({})
    assert result.status == ExperimentStatus.FAILED and "SystemExit" in result.error_message


@pytest.mark.parametrize("isolation", ["inline", "subprocess"])
def test_a_syntax_error_is_a_configuration_error_with_its_line(
    make_project: Callable[..., Path], isolation: str
) -> None:
    root = make_project("typo", {"t.py": "def run(:\n    pass\n"})
    spec = ProjectSpec(name="typo", path=root, entry="t:run", isolation=isolation)
    result = adapt_project(root, spec).execute_with_parameters({})
    assert result.error_class == "configuration" and "syntax error at t.py:1" in result.error_message
