"""ProjectSpec: the per-kind options, and unknown keys rejected at every level."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.config import load_sweep
from core.errors import InputError
from core.project import ProjectSpec
from tests.adapters.conftest import sweep_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BROKEN = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "broken_projects"


def spec(**fields: object) -> ProjectSpec:
    return ProjectSpec.model_validate({"name": "p", "path": ".", **fields})


def test_existing_fields_keep_their_names() -> None:
    s = spec(
        entry="m:f",
        kind="callable",
        resource="local_cpu",
        device="local:sv",
        fixed={"a": 1},
        metrics={"y": "out.y"},
        timeout=3,
    )
    assert (s.entry, s.kind, s.fixed, s.metrics, s.timeout) == (
        "m:f",
        "callable",
        {"a": 1},
        {"y": "out.y"},
        3,
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"entry": "m:f", "colour": "red"},
        {"entry": "python x.py", "command": {"stdout": "json"}},
        {"entry": "m:C", "class": {"methd": "run"}},
        {"circuit": {"build": "m:b", "shot_param": "n"}},
        {"entry": "m:f", "standardize": {"fidelty": ["f"]}},
        {"entry": "m:f", "standardize": {"cost": {"per_hour": 1}}},
    ],
)
def test_unknown_keys_are_rejected_at_every_level(fields: dict) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        spec(**fields)


def test_class_options_use_the_yaml_key_class() -> None:
    s = spec(entry="m:C", **{"class": {"method": "energy", "constructor": ["bond"]}})
    assert s.class_ is not None and s.class_.method == "energy" and s.class_.constructor == ["bond"]


def test_fidelity_list_is_shorthand_for_scale_one() -> None:
    s = spec(entry="m:f", standardize={"fidelity": ["f", "g"]})
    assert s.standardize.fidelity == {"f": 1.0, "g": 1.0}
    assert spec(entry="m:f", standardize={"fidelity": {"pct": 100}}).standardize.fidelity == {"pct": 100.0}


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"entry": "x", "command": {}, "circuit": {"build": "m:b"}}, "at most one"),
        ({"entry": "m:f", "kind": "callable", "command": {}}, "does not match"),
        ({"entry": "m:f", "python": "/usr/bin/python3", "requirements": "requirements.txt"}, "not both"),
        ({"entry": "m:f", "device": "ionq"}, "device must be"),
        ({"entry": "m:f", "standardize": {"baselines": {"e": {"goal": "minimize"}}}}, "exactly one"),
        ({"entry": "m:f", "standardize": {"fidelity": {"f": 0}}}, "must be > 0"),
        ({"entry": "python x.py", "command": {"params_file": "params.txt"}}, "pattern"),
    ],
)
def test_inconsistent_options_are_rejected(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**fields)


def test_arn_devices_are_accepted() -> None:
    assert spec(
        circuit={"build": "m:b"}, device="arn:aws:braket:::device/quantum-simulator/amazon/sv1"
    ).device


@pytest.mark.parametrize("sweep", sorted((EXAMPLES / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_example_sweeps_validate(sweep: Path) -> None:
    config = load_sweep(sweep)
    runs = min(config.space().size, config.max_experiments or config.space().size)
    assert runs <= 30  # small enough for a test run
    assert config.adaptive_sampling == (sweep.stem == "qaoa_adaptive")  # the one adaptive example


def test_cross_project_sweep_spans_two_projects() -> None:
    config = load_sweep(EXAMPLES / "sweeps" / "cross_project.yaml")
    assert config.cross_project_analysis and len(config.projects) == 2


def test_broken_fixture_sweep_validates() -> None:
    assert len(load_sweep(BROKEN / "sweep.yaml").projects) == 8


def test_a_misspelt_key_in_a_sweep_names_file_line_and_field(tmp_path: Path) -> None:
    text = "name: s\nprojects:\n  - name: p\n    path: proj\n    entry: m:f\n    comand: {env: true}\n"
    sweep = sweep_file(tmp_path, text + "parameters:\n  x: [1]\n", "proj")
    with pytest.raises(InputError) as info:
        load_sweep(sweep)
    assert info.value.line == 6 and "comand" in str(info.value)


def test_a_sweep_survives_the_json_trip_to_the_workers() -> None:
    from core.config import SweepConfiguration

    config = load_sweep(EXAMPLES / "sweeps" / "vqe_h2.yaml")
    again = SweepConfiguration.model_validate_json(config.model_dump_json())
    assert again == config and again.projects[0].class_ is not None
