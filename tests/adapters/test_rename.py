"""``rename: {sweep_name: argument_name}``: entries whose arguments are named otherwise than the
sweep's parameters run unchanged, in every kind, and rows keep the sweep's names (issue 20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import adapt_project
from core.config import validate_sweep
from core.errors import InputError
from core.project import ProjectSpec
from core.settings import load_settings
from orchestrator.validation import validate

MODULE = "def run(angle, depth=1):\n    return {'y': angle * depth}\n"
TOOL = "import json, sys\nprint(json.dumps({'y': float(sys.argv[1])}))\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "sim.py").write_text(MODULE)
    (tmp_path / "tool.py").write_text(TOOL)
    return tmp_path


@pytest.mark.parametrize("entry", ["sim:run", "python tool.py {angle}"])
def test_a_renamed_parameter_reaches_the_entry_by_its_argument_name(folder: Path, entry: str) -> None:
    sweep = {
        "name": "renamed",
        "projects": [{"name": "p", "path": str(folder), "entry": entry, "rename": {"gamma": "angle"}}],
        "parameters": {"gamma": [0.5, 1.5]},
        "adaptive_sampling": False,
    }
    config = validate(sweep, load_settings()).config  # the static check binds `angle`
    spec = config.projects[0]
    result = adapt_project(folder, spec).execute_with_parameters({"gamma": 0.5})
    assert result.status == "completed", result.error_message
    assert result.metrics["y"] == 0.5
    assert result.parameters == {"gamma": 0.5}, "rows keep the sweep's names"


def test_without_rename_the_near_miss_is_named(folder: Path) -> None:
    sweep = {
        "name": "near",
        "projects": [{"name": "p", "path": str(folder), "entry": "sim:run"}],
        "parameters": {"angel": [0.5]},
        "adaptive_sampling": False,
    }
    with pytest.raises(InputError) as caught:
        validate(sweep, load_settings())
    assert "the sweep's 'angel' is close to the entry's 'angle'" in caught.value.message
    assert "rename: {angel: angle}" in (caught.value.fix or "")
    assert caught.value.field == "projects[0].entry"


def test_rename_targets_are_argument_names() -> None:
    with pytest.raises(ValueError, match="not an argument name"):
        ProjectSpec(name="p", path=".", entry="m:run", rename={"gamma": "an angle"})
    with pytest.raises(ValueError, match="same argument"):
        ProjectSpec(name="p", path=".", entry="m:run", rename={"a": "x", "b": "x"})


def test_a_swap_is_allowed(folder: Path) -> None:
    sweep = {
        "name": "swap",
        "projects": [
            {"name": "p", "path": str(folder), "entry": "sim:run", "rename": {"a": "angle", "angle": "a"}}
        ],
        "parameters": {"a": [1.0], "angle": [2.0]},
        "adaptive_sampling": False,
    }
    spec = validate_sweep(sweep).projects[0]
    assert spec.arguments({"a": 1.0, "angle": 2.0}) == {"angle": 1.0, "a": 2.0}


def test_a_run_that_cannot_be_checked_before_says_did_you_mean_too() -> None:
    """A project whose virtualenv is not built yet is checked only by name at submit; its runs
    then fail with the same hint."""
    from adapters.runner import EntryError, call_entry

    def run(gamma: float, depth: int = 1) -> float:
        return gamma * depth

    with pytest.raises(
        EntryError, match=r"the sweep's 'gama' is close to the entry's 'gamma'.*rename: \{gama: gamma\}"
    ):
        call_entry(run, {"gama": 1.0})
