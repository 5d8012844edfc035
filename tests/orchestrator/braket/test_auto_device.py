"""``device: auto`` and the simulator alternatives of ``estimate``, against the real SDK, the fake
Braket service and moto's S3 over HTTP: the cheapest device that can run each circuit shape now,
the reasons the others lost, and what the same points would cost on the simulators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from core.config import SweepConfiguration
from core.plan import SweepPlan
from core.settings import load_settings
from orchestrator.validation import validate
from tests.conftest import cli
from tests.support.auto_device import auto_sweep
from tests.support.fake_devices import IONQ, IQM, SV1
from tests.web.conftest import dry_run


def _sweep(widths: list[int], shots: int = 100, **project: Any) -> dict[str, Any]:
    return auto_sweep({"n": widths, "shots": [shots]}, **{"resource": "braket_qpu", **project})


@pytest.fixture
def paid(braket_env, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ORCHESTRATOR_BRAKET_S3_BUCKET", braket_env.bucket)
    return braket_env


def _devices(config: SweepConfiguration) -> dict[int, str | None]:
    plan = SweepPlan(config, {"ghz": "v"})
    return {int(e.parameters["n"]): e.device for e in plan.experiments(range(plan.space.size))}


def test_each_shape_gets_the_cheapest_device_that_can_run_it(paid) -> None:
    validated = validate(_sweep([3, 24, 30]), load_settings())
    choice = validated.config.projects[0].device_choice
    assert choice is not None and choice.keys == ["n"]  # the width alone tells the shapes apart
    # free local state vector up to its 25 qubits; SV1 past it, never local:sv
    assert _devices(validated.config) == {3: "local:sv", 24: "local:sv", 30: SV1}
    wide = choice.shape_for({"n": 30, "shots": 100})
    assert wide is not None and wide.device == SV1 and wide.shape.startswith("30 qubits")
    assert wide.candidates["local:sv"] == "circuit needs 30 qubits, device has 25"
    assert wide.candidates[IQM] == "circuit needs 30 qubits, device has 20"
    assert "more than SV1" in wide.candidates[IONQ]
    narrow = choice.shape_for({"n": 3, "shots": 100})
    assert narrow is not None and "more than LocalSimulator" in narrow.candidates[SV1]
    # the estimate prices the chosen devices, and says what it chose and why
    lines = validated.estimate.lines
    assert lines[SV1].tasks == 1 and lines["local:sv"].tasks == 2
    chosen = {(c["shape"].split(",")[0], c["device"]) for c in validated.estimate.choices}
    assert chosen == {("3 qubits", "local:sv"), ("24 qubits", "local:sv"), ("30 qubits", SV1)}


def test_an_offline_qpu_is_skipped_and_chosen_again_once_online(paid) -> None:
    sweep = _sweep([2, 3], devices=[IONQ, IQM], require_qpu=True)
    online = validate(sweep, load_settings()).config
    assert set(_devices(online).values()) == {IQM}  # the cheaper QPU per shot
    paid.admin.device(IQM, status="OFFLINE")
    offline = validate(sweep, load_settings()).config
    assert set(_devices(offline).values()) == {IONQ}
    shape = offline.projects[0].device_choice.shapes[0]  # type: ignore[union-attr]
    assert shape.candidates == {IQM: "device Garnet is OFFLINE"}
    # the choice is stored state, not the request: both are the same sweep
    assert online.sweep_id == offline.sweep_id == SweepConfiguration.model_validate(sweep).sweep_id


def test_the_choice_is_part_of_the_experiment_identity(paid) -> None:
    sweep = _sweep([2], devices=[IONQ, IQM], require_qpu=True)
    on_iqm = SweepPlan(validate(sweep, load_settings()).config, {"ghz": "v"}).experiment(0)
    paid.admin.device(IQM, status="OFFLINE")
    on_ionq = SweepPlan(validate(sweep, load_settings()).config, {"ghz": "v"}).experiment(0)
    assert (on_iqm.device, on_ionq.device) == (IQM, IONQ)
    assert on_iqm.experiment_id != on_ionq.experiment_id  # a result from one is never reused for the other


def test_projects_without_auto_keep_their_sweep_ids() -> None:
    sweep = _sweep([2])
    sweep["projects"][0]["device"] = IONQ
    dumped = SweepConfiguration.model_validate(sweep).model_dump(mode="json")["projects"][0]
    assert not {"devices", "require_qpu", "device_choice"} & set(dumped)


def _words(text: str) -> str:
    """Printed output with the table rules dropped and whitespace squeezed."""
    return " ".join("".join(" " if "\u2500" <= c <= "\u257f" else c for c in text).split())


def _write(workdir: Path, sweep: dict[str, Any]) -> Path:
    path = workdir / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def test_no_candidate_can_run_a_shape_is_bad_input_and_writes_nothing(
    paid, workdir: Path, redis_url: str
) -> None:
    sweep = _write(workdir, _sweep([3, 30], devices=["local:sv", IQM]))
    proc = cli("run", str(sweep), "--broker", redis_url, "--yes", workdir=workdir, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    assert "field 'projects[0].devices'" in message
    assert "no candidate can run the 30 qubits" in message and "'n': 30" in message
    assert (
        "closest: LocalSimulator (state vector) (local:sv): circuit needs 30 qubits, device has 25" in message
    )
    assert "Traceback" not in proc.stderr
    assert redis.Redis.from_url(redis_url).dbsize() == 0, "no Redis keys"
    assert not (workdir / "results").exists(), "no result files"
    assert paid.admin.stats()["created_total"] == 0


@pytest.mark.parametrize(
    "project, field",
    [
        ({"resource": "local_cpu"}, "projects[0].resource"),
        ({"devices": [IONQ], "require_qpu": False, "resource": "braket_qpu"}, None),
    ],
)
def test_auto_on_local_cpu_workers_is_refused(paid, project: dict[str, Any], field: str | None) -> None:
    from core.errors import InputError

    if field is None:  # a valid variant: the same sweep with a braket queue goes through
        validate(_sweep([2], **project), load_settings())
        return
    with pytest.raises(InputError) as caught:
        validate(_sweep([2], **project), load_settings())
    assert caught.value.field == field and "local_cpu" in caught.value.message


def test_estimate_on_a_qpu_sweep_prints_the_simulator_alternatives(paid, workdir: Path) -> None:
    sweep = _sweep([2, 3, 4], shots=200)
    sweep["projects"][0]["device"] = IONQ
    proc = cli("estimate", str(_write(workdir, sweep)), workdir=workdir, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = _words(proc.stdout)
    per_task = 0.30 + 0.08 * 200
    assert "simulator alternatives" in out
    assert f"ghz planned (Forte-1) 3 {3 * per_task:.4f} yes" in out
    assert "ghz sv1 3 0.0112 yes" in out and "ghz dm1 3 0.0112 yes" in out  # 3 s minimum each
    assert "ghz local:sv 3 0.0000 yes" in out and "ghz local:dm 3 0.0000 yes" in out
    assert f"suggestion: ghz: local:dm runs the same 3 points for free instead of ${3 * per_task:.2f}" in out


def test_estimate_says_where_a_simulator_cannot_run_it_and_what_auto_chose(paid, workdir: Path) -> None:
    sweep = _sweep([2, 16], devices=[IONQ, IQM], require_qpu=True)
    proc = cli("estimate", str(_write(workdir, sweep)), workdir=workdir, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = _words(proc.stdout)
    assert f"device: auto, ghz: 1 points of 16 qubits, 16 gates (cnot, h), 100 shots -> {IQM}" in out
    assert f"{IONQ}: $8.3000 per task, more than Garnet at $0.4450" in out
    assert "ghz local:dm 2 - no: circuit needs 16 qubits, device has 12" in out
    assert "ghz local:sv 2 0.0000 yes" in out
    assert "suggestion: ghz: local:sv runs the same 2 points for free instead of $0.89" in out


def _qpu_sweep(workdir: Path) -> Path:
    sweep = _sweep([2, 3, 4], shots=200)
    sweep["projects"][0]["device"] = IONQ
    return _write(workdir, sweep)


def test_runs_confirmation_names_the_cheaper_simulator(paid, workdir: Path, redis_url: str) -> None:
    # $48.90 is above confirm_above: without a terminal to ask, run refuses, and says what is cheaper
    proc = cli("run", str(_qpu_sweep(workdir)), "--broker", redis_url, workdir=workdir, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert "suggestion: ghz: local:dm runs the same 3 points for free instead of $48.90" in err
    assert "pass --yes" in err and redis.Redis.from_url(redis_url).dbsize() == 0


def test_the_rest_dry_run_returns_the_choice_and_the_alternatives(
    paid, workdir: Path, redis_url: str
) -> None:
    sweep = _sweep([2, 3], devices=[IONQ, IQM], require_qpu=True)
    res = dry_run(workdir, redis_url, yaml.safe_dump(sweep))
    assert res.status_code == 200, res.text
    estimate = res.json()["estimate"]
    assert {c["device"] for c in estimate["device_choices"]} == {IQM}
    assert all("more than Garnet" in c["candidates"][IONQ] for c in estimate["device_choices"])
    local_dm = next(a for a in estimate["alternatives"] if a["device"] == "local:dm")
    assert local_dm == {**local_dm, "runs": True, "cost": 0.0, "tasks": 2}
    assert any(
        n.startswith("suggestion: ghz: local:dm runs the same 2 points for free") for n in estimate["notes"]
    )
    assert redis.Redis.from_url(redis_url).dbsize() == 0


def test_auto_among_the_local_simulators_needs_no_bucket_and_no_braket() -> None:
    # no fake service, no bucket: a choice between free devices asks nothing of AWS
    sweep = _sweep([2, 3], devices=["local:sv", "local:dm"], resource="local_cpu")
    sweep["parameters"]["noise"] = [0.0, 0.1]
    validated = validate(sweep, load_settings())
    plan = SweepPlan(validated.config, {"ghz": "v"})
    devices = {e.parameters["noise"]: e.device for e in plan.experiments(range(plan.space.size))}
    assert devices == {0.0: "local:sv", 0.1: "local:dm"}  # noise channels need the density matrix
    assert validated.config.projects[0].device_choice.keys == ["n", "noise"]  # type: ignore[union-attr]
    assert not validated.estimate.alternatives and validated.estimate.total == 0
