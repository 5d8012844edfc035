"""The local-simulator executor, and the conformance every circuit executor must meet."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from braket.circuits import Circuit
from braket.circuits.gates import CNot, H
from braket.circuits.noise_model import GateCriteria, NoiseModel
from braket.circuits.noises import BitFlip, TwoQubitDepolarizing

from core.errors import InputError
from core.models import ExperimentStatus
from orchestrator.braket import BraketLocalExecutor, BraketManagedExecutor, IExperimentExecutor, run_local
from orchestrator.store import BraketLedgers
from tests.orchestrator.braket.sources import BellSource, experiment
from tests.support.braket_env import BraketTestEnv
from tests.support.fake_devices import SV1
from tests.support.redis_db import TestRedis


def local_executor(env: BraketTestEnv, redis: TestRedis) -> IExperimentExecutor:
    return BraketLocalExecutor(BellSource())


def managed_executor(env: BraketTestEnv, redis: TestRedis) -> IExperimentExecutor:
    ledgers = BraketLedgers(redis.client, prefix=redis.prefix)
    return BraketManagedExecutor(ledgers, s3_bucket=env.bucket, source=BellSource())


@pytest.mark.parametrize(
    "make, device", [(local_executor, "local:sv"), (managed_executor, SV1)], ids=["local", "managed"]
)
def test_every_circuit_executor_runs_a_bell_pair(
    make: Callable, device: str, braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    executor = make(braket_env, test_redis)
    exp = experiment(f"conformance-{device}", device, shots=200)
    result = executor.execute(exp)
    assert result.status == ExperimentStatus.COMPLETED, result.error_message
    assert result.metrics["p_bell"] == pytest.approx(1.0)
    assert result.experiment_id == exp.experiment_id and result.device == device
    assert result.cost == pytest.approx(executor.estimate_cost(exp))
    assert executor.estimate_duration(exp).total_seconds() > 0


def test_inputs_bind_free_parameters() -> None:
    result = BraketLocalExecutor(BellSource()).execute(experiment("theta", "local:sv", shots=100, theta=0.0))
    assert result.metrics["p_00"] == pytest.approx(1.0)


def test_density_matrix_with_a_noise_model() -> None:
    noise = NoiseModel().add_noise(BitFlip(0.5), GateCriteria(H))
    executor = BraketLocalExecutor(BellSource(), device="local:dm", noise_model=noise)
    result = executor.execute(experiment("noisy", "local:dm", shots=2000))
    assert result.status == ExperimentStatus.COMPLETED
    # A bit flip after H does nothing to |+>, so the Bell pair survives it.
    assert result.metrics["p_bell"] == pytest.approx(1.0)
    after_cnot = NoiseModel().add_noise(TwoQubitDepolarizing(0.5), GateCriteria(CNot))
    noisy = BraketLocalExecutor(BellSource(), device="local:dm", noise_model=after_cnot)
    assert noisy.execute(experiment("noisy2", "local:dm", shots=4000)).metrics["p_bell"] < 0.9


def test_run_program_is_the_adapter_hook_and_accepts_openqasm_text() -> None:
    executor = BraketLocalExecutor(BellSource())
    qasm = Circuit().x(0).to_ir("OPENQASM").source
    assert executor.run_program(qasm, 10).measurement_counts == {"1": 10}


def test_local_input_errors() -> None:
    with pytest.raises(InputError, match="too wide for local:sv"):
        run_local(Circuit().h(range(26)), 10)
    with pytest.raises(InputError, match="run it on local:dm"):
        run_local(Circuit().h(0).depolarizing(0, 0.1), 10)
    with pytest.raises(InputError, match="unknown local device"):
        BraketLocalExecutor(BellSource(), device="local:tn")
    with pytest.raises(InputError, match="shots must be a non-negative integer"):
        BraketLocalExecutor(BellSource()).execute(experiment("bad", "local:sv", shots=-5))
