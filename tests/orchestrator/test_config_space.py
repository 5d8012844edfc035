"""Sweep configuration, parameter ranges, the lazy space and safe constraints (unit tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.config import load_sweep, validate_sweep
from core.errors import InputError
from core.expressions import Expression
from core.identity import experiment_id
from core.plan import SweepPlan
from tests.conftest import FIXTURES

COUNTER = str(FIXTURES / "projects" / "counter")


def _sweep(parameters: dict, **extra) -> dict:
    return {
        "name": "t",
        "projects": [{"name": "c", "path": COUNTER, "entry": "counter:run"}],
        "parameters": parameters,
        "adaptive_sampling": False,
        **extra,
    }


def test_every_range_kind() -> None:
    config = validate_sweep(
        _sweep(
            {
                "a": [1, 2, 3],
                "b": {"start": 0, "stop": 1, "num": 3},
                "c": {"start": 0, "stop": 1, "step": 0.5},
                "d": {"kind": "log", "start": 0.001, "stop": 1, "num": 4},
                "e": {"kind": "int", "start": 2, "stop": 8, "step": 3},
                "f": {"choices": ["ring", "star"]},
                "g": 5,
            }
        )
    )
    space = config.space()
    assert space.size == 3 * 3 * 3 * 4 * 3 * 2 * 1
    cols = space.columns(np.arange(space.size))
    assert sorted(set(cols["c"].tolist())) == [0.0, 0.5, 1.0]
    assert sorted(set(np.round(cols["d"], 6).tolist())) == [0.001, 0.01, 0.1, 1.0]
    assert sorted(set(cols["e"].tolist())) == [2, 5, 8]
    assert set(cols["f"].tolist()) == {"ring", "star"}
    assert space.info["d"].log and space.info["f"].kind == "categorical"


@pytest.mark.parametrize("method", ["uniform", "loguniform", "sobol", "lhs"])
def test_sampled_parameters_form_one_joint_design(method: str) -> None:
    config = validate_sweep(
        _sweep(
            {
                "x": {"sample": method, "low": 0.1, "high": 2.0, "n": 16},
                "y": {"sample": method, "low": 0.1, "high": 2.0, "n": 16},
                "z": [0, 1],
            }
        )
    )
    space = config.space()
    assert space.size == 32  # one 16-point joint design x two values of z
    cols = space.columns(np.arange(32))
    assert ((cols["x"] >= 0.1) & (cols["x"] <= 2.0)).all()
    again = validate_sweep(
        _sweep(
            {
                "x": {"sample": method, "low": 0.1, "high": 2.0, "n": 16},
                "y": {"sample": method, "low": 0.1, "high": 2.0, "n": 16},
                "z": [0, 1],
            }
        )
    )
    assert np.array_equal(again.space().columns(np.arange(32))["x"], cols["x"]), "seeded: reproducible"


def test_constraints_filter_the_grid_lazily() -> None:
    config = validate_sweep(
        _sweep(
            {"beta": [0.1, 0.2, 0.3], "gamma": [0.1, 0.2, 0.3]}, constraints={"parameters": ["beta <= gamma"]}
        )
    )
    valid = np.concatenate(list(config.space().iter_valid()))
    points = [config.space().point(int(i)) for i in valid]
    assert len(points) == 6 and all(p["beta"] <= p["gamma"] for p in points)


def test_million_point_space_is_not_materialised() -> None:
    config = validate_sweep(
        _sweep(
            {
                "a": {"kind": "int", "start": 0, "stop": 99},
                "b": {"kind": "int", "start": 0, "stop": 99},
                "c": {"kind": "int", "start": 0, "stop": 99},
            }
        )
    )
    space = config.space()
    assert space.size == 1_000_000
    assert space.point(999_999) == {"a": 99, "b": 99, "c": 99}
    assert sum(a.values.nbytes for a in space.axes) < 10_000


def test_expressions_are_safe_and_vectorised() -> None:
    expr = Expression("abs(beta - gamma) < 0.15 and graph in ['ring', 'star'] or not p >= 2")
    assert expr.names == {"beta", "gamma", "graph", "p"}
    out = expr.evaluate(
        {
            "beta": np.array([0.1, 0.5]),
            "gamma": np.array([0.2, 0.2]),
            "graph": np.array(["ring", "ring"], dtype=object),
            "p": np.array([3, 3]),
        }
    )
    assert out.tolist() == [True, False]
    for bad in ["__import__('os')", "x.__class__", "open('f')", "[i for i in x]", "lambda: 1"]:
        with pytest.raises(ValueError):
            Expression(bad)


def test_experiment_identity_is_stable_and_sensitive() -> None:
    a = experiment_id("p", "git:abc", {"x": 0.1 + 0.2, "y": 1}, 0, "local_cpu")
    assert a == experiment_id("p", "git:abc", {"y": 1, "x": 0.3}, 0, "local_cpu")  # float noise, key order
    assert a != experiment_id("p", "git:abd", {"x": 0.3, "y": 1}, 0, "local_cpu")  # code version
    assert a != experiment_id("p", "git:abc", {"x": 0.3, "y": 1}, 1, "local_cpu")  # repeat
    assert a != experiment_id("p", "git:abc", {"x": 0.3, "y": 1}, 0, "braket_sim")  # resource
    ionq = experiment_id("p", "git:abc", {"x": 0.3, "y": 1}, 0, "braket_qpu", "arn:.../ionq/Forte-1")
    assert ionq != experiment_id("p", "git:abc", {"x": 0.3, "y": 1}, 0, "braket_qpu", "arn:.../iqm/Garnet")


def test_plan_enumerates_projects_and_repeats() -> None:
    config = validate_sweep(
        {
            **_sweep({"x": [1, 2]}, repeats=3),
            "projects": [
                {"name": "c", "path": COUNTER, "entry": "counter:run"},
                {"name": "d", "path": COUNTER, "entry": "counter:run"},
            ],
        }
    )
    plan = SweepPlan.build(config)
    indices = plan.experiment_indices(np.array([0, 1]))
    experiments = [plan.experiment(int(i)) for i in indices]
    assert len({e.experiment_id for e in experiments}) == 12
    assert [e.project for e in experiments[:4]] == ["c", "d", "c", "d"]
    assert dict(plan.experiment_ids(indices))[int(indices[5])] == experiments[5].experiment_id


def test_yaml_errors_name_line_field_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: t\nprojects:\n  - name: c\n    path: {COUNTER}\nparameters:\n  x: {{start: 0, stop: 1}}\n"
    )
    with pytest.raises(InputError) as err:
        load_sweep(path)
    assert err.value.field == "parameters.x" and err.value.line == 6 and "num" in str(err.value)


def test_project_settings_file_supplies_defaults(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "orchestrator-project.yaml").write_text("entry: counter:run\nresource: braket_sim\n")
    (tmp_path / "s.yaml").write_text(
        "name: t\nprojects:\n  - {name: c, path: proj}\nparameters:\n  x: [1]\nadaptive_sampling: false\n"
    )
    config = load_sweep(tmp_path / "s.yaml")
    assert config.projects[0].entry == "counter:run" and config.projects[0].resource == "braket_sim"
