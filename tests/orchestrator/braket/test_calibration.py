"""``noise: device``: the ladder's QPU calibration, read at submit from its device description
through the real SDK (the fake Braket service over HTTP), simulated on local:dm as the fake QPU
samples it, and refused with exit 2 when the QPU publishes none."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from braket.aws import AwsDevice
from braket.circuits import Circuit
from braket.device_schema import StandardizedGateModelQpuDeviceProperties

from adapters import adapt_project
from core.config import SweepConfiguration
from core.errors import InputError
from core.identity import project_options
from core.project import Calibration, ProjectSpec
from core.settings import load_settings
from orchestrator.braket.calibration import from_capabilities, read_calibration
from orchestrator.validation import validate
from tests.conftest import cli
from tests.support.auto_device import GHZ
from tests.support.fake_devices import DM1, IONQ, IQM, default_devices


@pytest.fixture
def paid(braket_env, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ORCHESTRATOR_BRAKET_S3_BUCKET", braket_env.bucket)
    return braket_env


def _published(arn: str) -> Calibration:
    cal = default_devices()[arn].calibration
    assert cal is not None
    return Calibration(device=arn, one_qubit=cal.one_qubit, two_qubit=cal.two_qubit, readout=cal.readout)


@pytest.mark.parametrize("arn", [IONQ, IQM])  # IonQ's provider.fidelity, IQM's per-qubit table
def test_a_qpus_calibration_is_read_from_its_device_description(paid, arn: str) -> None:
    assert read_calibration(arn) == _published(arn)  # one value per qubit or pair: the mean is it


def test_a_device_without_calibration_is_bad_input_naming_it(paid) -> None:
    paid.admin.device(IQM, calibration=None)
    for arn in (IQM, DM1):
        with pytest.raises(InputError, match=f"device {arn} publishes no calibration"):
            read_calibration(arn)


def test_a_top_qpu_braket_does_not_know_is_named_at_its_rung(paid) -> None:
    unknown = IQM.replace("Garnet", "Emerald-9")
    with pytest.raises(InputError) as caught:
        validate(_ladder(top=unknown), load_settings())
    assert caught.value.field == "projects[0].fidelities[1].device" and unknown in caught.value.message


def test_the_standardized_properties_are_averaged() -> None:
    def qubit(rb: float, readout: float) -> dict[str, Any]:
        return {
            "T1": {"value": 30.0, "unit": "us"},
            "T2": {"value": 40.0, "unit": "us"},
            "oneQubitFidelity": [
                {"fidelityType": {"name": "RANDOMIZED_BENCHMARKING"}, "fidelity": rb + 0.0005},
                {"fidelityType": {"name": "SIMULTANEOUS_RANDOMIZED_BENCHMARKING"}, "fidelity": rb},
                {"fidelityType": {"name": "READOUT"}, "fidelity": readout},
            ],
        }

    def gate(name: str, fidelity: float) -> dict[str, Any]:
        return {"gateName": name, "fidelity": fidelity, "fidelityType": {"name": "INTERLEAVED_RB"}}

    standardized = {
        "braketSchemaHeader": {
            "name": "braket.device_schema.standardized_gate_model_qpu_device_properties",
            "version": "1",
        },
        "oneQubitProperties": {"0": qubit(0.998, 0.96), "1": qubit(0.996, 0.94)},
        "twoQubitProperties": {
            "0-1": {"twoQubitGateFidelity": [gate("CZ", 0.97), gate("ISWAP", 0.95)]},
            "1-2": {"twoQubitGateFidelity": [gate("CZ", 0.93)]},
        },
    }
    StandardizedGateModelQpuDeviceProperties.parse_raw_schema(json.dumps(standardized))  # as Braket has it
    cal = from_capabilities("rigetti", {"standardized": standardized})
    # per qubit the simultaneous RB figure, per pair its best gate
    assert (cal.one_qubit, cal.two_qubit, cal.readout) == pytest.approx((0.997, 0.95, 0.95))


def test_a_per_qubit_table_is_averaged_without_its_standard_errors() -> None:
    specs = {
        "1Q": {
            "0": {"f1QRB": 0.998, "f1QRB_std_err": 0.0001, "fRO": 0.95},
            "1": {"f1QRB": 0.994, "fRO": 0.93},
        },
        "2Q": {"0-1": {"fCZ": 0.96, "fCZ_std_err": 0.01, "fXY": 0.94}, "1-2": {"fCZ": 0.92}},
    }
    cal = from_capabilities("rigetti", {"provider": {"specs": specs}})
    assert (cal.one_qubit, cal.two_qubit, cal.readout) == pytest.approx((0.996, 0.94, 0.94))


# -- local:dm with the QPU's calibration against the QPU ---------------------------------------------


def _ghz3() -> Circuit:
    return Circuit().h(0).cnot(0, 1).cnot(1, 2)


def _local_dm(noise: Calibration | None, shots: int) -> dict[str, float]:
    spec = ProjectSpec(name="ghz", path=GHZ, device="local:dm", circuit={"build": "ghz:build"}, noise=noise)
    return adapt_project(GHZ, spec).run({"n": 3, "shots": shots})


def _agree(a: dict[str, float], n_a: int, b: dict[str, float], n_b: int) -> bool:
    """Every bitstring's frequency agrees within 4.5 standard errors of the difference of two
    binomial estimates (the chance of a false alarm over 8 outcomes is below 1e-4)."""
    for bits in set(a) | set(b):
        pa, pb = a.get(bits, 0.0), b.get(bits, 0.0)
        p = (pa * n_a + pb * n_b) / (n_a + n_b)
        se = math.sqrt(max(p * (1 - p), 1 / (n_a + n_b)) * (1 / n_a + 1 / n_b))
        if abs(pa - pb) > 4.5 * se:
            return False
    return True


def _frequencies(device: str, program: Any, shots: int, bucket: str) -> dict[str, float]:
    counts = AwsDevice(device).run(program, (bucket, "noise"), shots=shots).result().measurement_counts
    return {f"p_{bits}": n / shots for bits, n in Counter(counts).items()}


def test_local_dm_with_the_qpus_calibration_samples_the_qpus_distribution(paid) -> None:
    shots, local_shots = 8000, 20000
    qpu = _frequencies(IQM, _ghz3(), shots, paid.bucket)
    noisy = _local_dm(read_calibration(IQM), local_shots)
    noiseless = _local_dm(None, local_shots)
    assert _agree(noisy, local_shots, qpu, shots)
    assert not _agree(noiseless, local_shots, qpu, shots)
    assert set(noiseless) == {"p_000", "p_111"} and len(noisy) == 8


def test_the_program_a_dm1_rung_submits_carries_the_qpus_noise(paid) -> None:
    shots = 8000
    spec = ProjectSpec(
        name="ghz", path=GHZ, device=DM1, circuit={"build": "ghz:build"}, noise=_published(IQM)
    )
    program, _ = adapt_project(GHZ, spec).build_program({"n": 3})  # what the managed worker submits
    assert _agree(
        _frequencies(DM1, program, shots, paid.bucket),
        shots,
        _frequencies(IQM, _ghz3(), shots, paid.bucket),
        shots,
    )
    assert paid.admin.stats()["created_total"] == 2


# -- at submit -------------------------------------------------------------------------------------


def _ladder(top: str = IQM) -> dict[str, Any]:
    return {
        "name": "ladder",
        "projects": [
            {
                "name": "ghz",
                "path": str(GHZ),
                "resource": "braket_qpu",
                "circuit": {"build": "ghz:build", "analyze": "ghz:analyze"},
                "fidelities": [{"device": "local:dm", "noise": "device"}, {"device": top, "shots": 100}],
            }
        ],
        "parameters": {"n": [2, 3], "shots": [100]},
        "adaptive_sampling": False,
    }


def test_submit_stores_the_snapshot_in_the_rung_and_a_new_one_makes_new_experiments(paid) -> None:
    sweep = _ladder()
    first = validate(sweep, load_settings()).config
    rung = first.projects[0].fidelities[0]
    assert rung.calibration == read_calibration(IQM) and first.projects[0].fidelities[1].calibration is None
    assert (
        first.sweep_id == SweepConfiguration.model_validate(sweep).sweep_id
    )  # stored state, as device_choice
    # a stored sweep (a coordinator restarted mid-sweep) keeps its snapshot: nothing is read again
    paid.admin.device(IQM, calibration={"one_qubit": 0.99, "two_qubit": 0.9, "readout": 0.95})
    again = validate(first.model_dump(mode="json", by_alias=True), load_settings()).config
    assert again.projects[0].fidelities[0].calibration == rung.calibration
    # the same file submitted after the QPU recalibrated: its runs simulate other noise, other ids
    recalibrated = validate(sweep, load_settings()).config.projects[0]
    assert recalibrated.fidelities[0].calibration.two_qubit == 0.9  # type: ignore[union-attr]
    assert project_options(recalibrated) != project_options(first.projects[0])
    assert first.projects[0].on_rung({"n": 2}).noise == rung.calibration


def test_each_noise_device_rung_gets_the_top_qpus_snapshot(paid) -> None:
    sweep = _ladder(top=IONQ)
    sweep["projects"][0]["fidelities"][1:1] = [{"device": DM1, "noise": "device"}, {"device": IQM}]
    rungs = validate(sweep, load_settings()).config.projects[0].fidelities
    assert [r.calibration for r in rungs] == [_published(IONQ), _published(IONQ), None, None]


def test_a_rung_carrying_another_devices_calibration_is_refused() -> None:
    sweep = _ladder()
    sweep["projects"][0]["fidelities"][0]["calibration"] = _published(IONQ).model_dump()
    with pytest.raises(InputError) as caught:  # refused before Braket is asked anything
        validate(sweep, load_settings())
    assert caught.value.field == "projects[0].fidelities[0].calibration" and IONQ in caught.value.message


def _write(workdir: Path, sweep: dict[str, Any]) -> Path:
    path = workdir / "ladder.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


@pytest.mark.parametrize("command", ["run", "estimate"])
def test_noise_device_on_a_qpu_without_calibration_exits_2_and_writes_nothing(
    paid, workdir: Path, redis_url: str, command: str
) -> None:
    paid.admin.device(IQM, calibration=None)
    path = _write(workdir, _ladder())
    extra = ["--broker", redis_url, "--yes"] if command == "run" else []
    proc = cli(command, str(path), *extra, workdir=workdir, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    assert str(path) in message and "field 'projects[0].fidelities[0].noise'" in message
    assert f"device {IQM} publishes no calibration" in message
    assert "remove noise: device from the rung" in message and "Traceback" not in proc.stderr
    assert redis.Redis.from_url(redis_url).dbsize() == 0, "no Redis keys"
    assert not (workdir / "results").exists(), "no result files"
    assert paid.admin.stats()["created_total"] == 0


def test_the_apis_submit_refuses_it_before_writing(paid, workdir: Path, redis_url: str) -> None:
    from orchestrator.api import Orchestrator

    paid.admin.device(IQM, calibration=None)
    with (
        Orchestrator(redis_url, coordinate=False, results_dir=workdir / "results") as orch,
        pytest.raises(InputError) as caught,
    ):
        orch.submit(_ladder())
    assert caught.value.field == "projects[0].fidelities[0].noise" and IQM in caught.value.message
    assert redis.Redis.from_url(redis_url).dbsize() == 0
