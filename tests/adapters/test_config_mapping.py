"""Outside projects whose entry takes one configuration mapping: ``config_arg`` and its detection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from adapters import ProjectAdapter
from core.config import validate_sweep
from core.errors import InputError
from core.models import ExperimentStatus
from core.settings import load_settings
from orchestrator.validation import validate

# A study written before the orchestrator existed: configuration in, a dataclass of dataclasses out.
STUDY = """
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass
class Energy:
    value: float
    error: float


@dataclasses.dataclass
class Outcome:
    energy: Energy
    steps: int


def _solve(config):
    gamma, depth = float(config["gamma"]), int(config.get("depth", 1))
    return Outcome(Energy(value=-gamma * depth, error=0.01 * gamma), steps=depth)


def annotated(cfg: dict[str, Any]) -> Outcome:
    return _solve(cfg)


def as_mapping(settings: Mapping[str, Any], report=None) -> Outcome:
    if report is not None:
        report(-1.0)
    return _solve(settings)


def bare(cfg):
    return _solve(cfg)


class Experiment:
    def __init__(self, config: dict):
        self.config = dict(config)

    def run(self):
        return _solve(self.config)


class Untyped:
    def __init__(self, options):
        self.options = options

    def execute(self):
        return _solve(self.options)


class MethodSide:
    def __init__(self, label="x"):
        self.label = label

    def run(self, cfg):
        return _solve(cfg)
"""

METRICS = {"energy": "energy.value", "error": "energy.error", "steps": "steps"}
PARAMS = {"gamma": 0.5}


@pytest.fixture
def study(make_project: Callable[..., Path]) -> Path:
    return make_project("study", {"study.py": STUDY})


def _expect_solved(adapter: ProjectAdapter) -> None:
    result = adapter.execute_with_parameters(PARAMS)
    assert result.status == ExperimentStatus.COMPLETED, result.error_message
    # fixed depth=3 reached the mapping along with the swept gamma
    assert result.metrics == {"energy": -1.5, "error": 0.005, "steps": 3.0}


@pytest.mark.parametrize("isolation", ["inline", "subprocess"])
@pytest.mark.parametrize(
    "fields",
    [
        {"entry": "study:annotated"},  # detected: the only parameter is a dict[str, Any]
        {"entry": "study:as_mapping"},  # detected: Mapping, with report beside it
        {"entry": "study:bare", "config_arg": "cfg"},
        {"entry": "study:Experiment"},  # detected on the constructor
        {"entry": "study:Untyped", "class": {"method": "execute", "config_arg": "options"}},
        {"entry": "study:MethodSide", "class": {"config_arg": "cfg"}},
        {"entry": "study:Untyped", "class": {"method": "execute"}, "config_arg": "options"},
    ],
    ids=[
        "annotated",
        "mapping",
        "callable-option",
        "class-detected",
        "ctor-option",
        "method-option",
        "top-level",
    ],
)
def test_mapping_entries_run_unchanged(
    fields: dict, isolation: str, study: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    adapter = adapter_for(study, fixed={"depth": 3}, metrics=METRICS, isolation=isolation, **fields)
    signature = adapter.signature()
    assert signature.open and signature.mismatch(["gamma", "depth"]) == ([], [])
    _expect_solved(adapter)


def test_nested_dataclass_metrics_without_declaring_them(
    study: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    result = adapter_for(study, entry="study:annotated").execute_with_parameters({"gamma": 2.0})
    assert result.metrics == {"energy.value": -2.0, "energy.error": 0.02, "steps": 1.0}


@pytest.mark.parametrize(
    ("fields", "option"),
    [
        ({"entry": "study:bare"}, "config_arg: cfg"),
        ({"entry": "study:Untyped", "class": {"method": "execute"}}, "class: {config_arg: options}"),
    ],
)
def test_check_names_the_option_that_adapts_the_project(
    fields: dict, option: str, study: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    adapter = adapter_for(study, **fields)
    report = adapter.validate_compatibility(["gamma"], PARAMS)
    assert not report.ok
    detail = next(c.detail for c in report.checks if c.name == "signature")
    assert option in detail, detail
    failed = adapter.execute_with_parameters(PARAMS)  # and a run says the same
    assert failed.status == ExperimentStatus.FAILED and option in (failed.error_message or "")


def _sweep(study: Path, **project: object) -> dict:
    return {
        "name": "mapping",
        "projects": [{"name": "study", "path": str(study), **project}],
        "parameters": {"gamma": [0.1, 0.2]},
        "adaptive_sampling": False,
    }


def test_validation_refuses_an_unadaptable_entry_with_the_fix(study: Path) -> None:
    with pytest.raises(InputError) as caught:
        validate(_sweep(study, entry="study:bare"), load_settings())
    err = caught.value
    assert err.field == "projects[0].entry"
    assert "missing cfg" in err.message and "unexpected gamma" in err.message
    assert "config_arg: cfg" in (err.fix or "")


def test_validation_refuses_a_config_arg_the_entry_lacks(study: Path) -> None:
    with pytest.raises(InputError) as caught:
        validate(_sweep(study, entry="study:bare", config_arg="config"), load_settings())
    assert caught.value.field == "projects[0].config_arg"
    assert "has no parameter 'config'" in str(caught.value)


def test_validation_accepts_the_mapping_entries(study: Path) -> None:
    for project in (
        {"entry": "study:bare", "config_arg": "cfg"},
        {"entry": "study:Experiment"},
        {"entry": "study:MethodSide", "class": {"config_arg": "cfg"}},
    ):
        assert validate(_sweep(study, **project), load_settings()).config.projects[0].path == study


def test_config_arg_is_for_python_entries_only(study: Path) -> None:
    with pytest.raises(InputError) as caught:
        validate_sweep(_sweep(study, entry="python run.py {gamma}", kind="command", config_arg="cfg"))
    assert "config_arg applies to Python entries" in str(caught.value)


def test_mapping_projects_through_a_real_worker(
    study: Path, workdir: Path, redis_url: str, start_worker: Callable[..., object]
) -> None:
    from orchestrator import Orchestrator

    start_worker("mapping", concurrency=2)
    sweep = {
        "name": "mapping-e2e",
        "projects": [
            {
                "name": "fn",
                "path": str(study),
                "entry": "study:bare",
                "config_arg": "cfg",
                "metrics": METRICS,
            },
            {"name": "cls", "path": str(study), "entry": "study:Experiment", "metrics": METRICS},
        ],
        "parameters": {"gamma": [0.5, 1.0], "depth": [1, 2]},
        "adaptive_sampling": False,
    }
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(sweep).execution_id
        final = orch.wait(sid, timeout=120)
        frame = orch.results(sid)
    assert final.state == "completed" and len(frame) == 8, (final.counts, final.events)
    assert (frame["status"] == "completed").all(), frame[["project_name", "error_message"]]
    expected = -frame["param.gamma"] * frame["param.depth"]
    assert (frame["metric.energy"] == expected).all() and (
        frame["metric.steps"] == frame["param.depth"]
    ).all()
