"""An experiment's identity covers every input that can change its result (issues 20 and 24): a
result is reused only for the same work, and the id is a pure function of the sweep file and the
code, so a restarted coordinator finds the same experiments (and their paid Braket tasks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.config import SweepConfiguration, validate_sweep
from core.identity import experiment_id
from core.plan import SweepPlan
from tests.conftest import FIXTURES, ROOT

SEEDED = FIXTURES / "projects" / "seeded"
QAOA = ROOT / "examples" / "projects" / "qaoa_maxcut"
SV1 = "arn:aws:braket:::device/quantum-simulator/amazon/sv1"


def _config(project: dict[str, Any], seed: int = 1, **sweep: Any) -> SweepConfiguration:
    return validate_sweep(
        {
            "name": "ids",
            "projects": [{"name": "p", "path": str(SEEDED), **project}],
            "parameters": sweep.pop("parameters", {"x": [0.0, 1.0]}),
            "repeats": 2,
            "seed": seed,
            "adaptive_sampling": False,
            **sweep,
        },
        source="<t>",
    )


def _ids(config: SweepConfiguration, version: str = "sha256:abc") -> list[str]:
    plan = SweepPlan(config, {p.name: version for p in config.projects})
    return [plan.experiment(i).experiment_id for i in range(plan.space.size * plan.stride)]


BASE = {"entry": "seeded:run"}
#: one change per input that can change a result; each must give other ids
CHANGES = {
    "entry": {"entry": "seeded:Noisy"},
    "kind": {"kind": "callable"},
    "command template": {"entry": "{python} {project_dir}/noisy_tool.py {x}"},
    "metrics mapping": {"metrics": {"y": "y"}},
    "standardize": {"standardize": {"probabilities": ["y"]}},
    "config_arg": {"config_arg": "params"},
    "fixed": {"fixed": {"shots": 100}},
    "rename": {"rename": {"x": "x_value"}},
    "python": {"python": "/usr/bin/python3"},
    "requirements": {"requirements": False},
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_input_that_can_change_a_result_changes_the_id(change: str) -> None:
    base = _ids(_config(BASE))
    changed = _ids(_config({**BASE, **CHANGES[change]}))
    assert not set(base) & set(changed), f"{change} must be part of the identity"


def test_class_options_and_command_options_change_the_id() -> None:
    cls = {"entry": "seeded:Noisy"}
    assert set(_ids(_config(cls))).isdisjoint(_ids(_config({**cls, "class": {"constructor": ["seed"]}})))
    cmd = {"entry": "{python} {project_dir}/noisy_tool.py {x}"}
    assert set(_ids(_config(cmd))).isdisjoint(_ids(_config({**cmd, "command": {"regex": {"y": "y=(.*)"}}})))


def test_code_version_device_and_repeat_are_part_of_it() -> None:
    config = _config(BASE)
    assert set(_ids(config, "sha256:abc")).isdisjoint(_ids(config, "sha256:def"))
    ids = _ids(config)
    assert len(set(ids)) == len(ids), "each repeat of each point is its own experiment"
    local = _ids(_config({**BASE, "device": "local:sv"}))
    assert set(ids).isdisjoint(local)


@pytest.mark.parametrize(
    "harmless",
    [{"timeout": 30}, {"isolation": "subprocess"}, {"check_parameters": {"x": 1}}, {"exclude": ["*.h5"]}],
)
def test_options_that_cannot_change_a_result_keep_the_id(harmless: dict[str, Any]) -> None:
    assert _ids(_config(BASE)) == _ids(_config({**BASE, **harmless}))


def test_the_seed_a_run_receives_is_part_of_it() -> None:
    one, two = _ids(_config(BASE, seed=1)), _ids(_config(BASE, seed=2))
    assert set(one).isdisjoint(two), "another sweep seed: new experiments"
    assert one == _ids(_config(BASE, seed=1)), "the same seed: the same experiments (reused)"
    # a command receives it in $ORCHESTRATOR_SEED
    cmd = {"entry": "{python} {project_dir}/noisy_tool.py {x}"}
    assert set(_ids(_config(cmd, seed=1))).isdisjoint(_ids(_config(cmd, seed=2)))


def test_a_run_that_receives_no_derived_seed_keeps_its_id_across_seeds() -> None:
    swept = {"parameters": {"x": [0.0, 1.0], "seed": [5, 6]}}
    assert _ids(_config(BASE, seed=1, **swept)) == _ids(_config(BASE, seed=2, **swept)), "a swept seed wins"
    fixed = {**BASE, "fixed": {"seed": 5}}
    assert _ids(_config(fixed, seed=1)) == _ids(_config(fixed, seed=2)), "a fixed seed wins"
    circuit = validate_sweep(
        {
            "name": "c",
            "projects": [{"name": "q", "path": str(QAOA), "device": "local:sv"}],
            "parameters": {"gamma": [0.1, 0.2], "beta": [0.3]},
            "adaptive_sampling": False,
        },
        source="<t>",
    )
    assert _ids(circuit) == _ids(circuit.model_copy(update={"seed": 9})), "a circuit gets no seed"


def test_a_restarted_coordinator_rebuilds_the_same_ids_for_a_paid_sweep() -> None:
    """The coordinator and the optimizer rebuild a sweep's plan from what it stored in Redis
    (the configuration's JSON, the code versions, the identity scheme): the same ids, so a paid
    Braket submission keyed by its experiment is found again, never submitted twice."""
    config = validate_sweep(
        {
            "name": "paid",
            "projects": [
                {
                    "name": "q",
                    "path": str(QAOA),
                    "device": SV1,
                    "resource": "braket_sim",
                    "fixed": {"shots": 100},
                }
            ],
            "parameters": {"gamma": {"start": 0.1, "stop": 0.7, "num": 3}, "beta": [0.3]},
            "seed": 4,
            "adaptive_sampling": False,
        },
        source="<t>",
    )
    plan = SweepPlan(config, {"q": "sha256:abc"})
    meta = {"code_versions": '{"q": "sha256:abc"}', "identity": str(plan.identity)}
    again = SweepPlan.of(SweepConfiguration.model_validate_json(config.model_dump_json()), meta)
    indices = list(range(plan.space.size * plan.stride))
    assert [plan.experiment(i).experiment_id for i in indices] == [
        again.experiment(i).experiment_id for i in indices
    ]
    assert [e for _, e in plan.experiment_ids(indices)] == [plan.experiment(i).experiment_id for i in indices]


def test_a_sweep_registered_before_identity_schemes_keeps_its_ids() -> None:
    """An upgrade must not rename the experiments of a sweep in flight (paid tasks are keyed by them)."""
    config = _config(BASE)
    legacy = SweepPlan.of(config, {"code_versions": '{"p": "sha256:abc"}'})
    exp = legacy.experiment(3)
    assert exp.experiment_id == experiment_id("p", "sha256:abc", exp.parameters, exp.repeat, "local_cpu")
    assert dict(legacy.experiment_ids([3])) == {3: exp.experiment_id}


def test_rename_maps_sweep_names_to_the_entry_and_sweep_ids_stay(tmp_path: Path) -> None:
    config = _config({**BASE, "rename": {"x": "x_value"}})
    spec = config.projects[0]
    assert spec.arguments({"x": 1.0}) == {"x_value": 1.0}
    # fields added at their defaults leave the sweep id as it was
    assert "rename" not in _config(BASE).canonical_json()
