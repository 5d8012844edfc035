"""A batch whose rows cannot be recorded (the broker is gone) still lets go of its leases.

Unit test of :func:`workers.batch.run_batch` with its store stubbed: a lease
kept alive after the batch ended held its experiments "running" for ever (no orphan requeue
touches a leased experiment), which froze a sweep through a Redis restart.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import redis

from core.models import Experiment, ExperimentResult, ExperimentStatus
from core.protocol import BatchMessage, Claim
from core.settings import Settings
from orchestrator.dispatch import celery_app
from orchestrator.store import Record
from workers import batch
from workers.runner import ExperimentRunner


class _DeadStore:
    """Claims succeed; then the broker is gone for every record."""

    def __init__(self) -> None:
        self.record_calls = 0

    def claim_many(self, sweep_id: str, queue: str, indices: list[int], *_: Any, **__: Any) -> list[Any]:
        return [(Claim.RUN, 1) for _ in indices]

    def record_many(self, sweep_id: str, records: list[Record]) -> list[bool]:
        self.record_calls += 1
        raise redis.ConnectionError("Connection closed by server.")


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> ExperimentRunner:
    settings = Settings(broker_url="redis://127.0.0.1:1/0")
    run = ExperimentRunner(celery_app(settings), settings)
    run._state = _DeadStore()  # type: ignore[assignment]
    monkeypatch.setattr(batch, "RECORD_PATIENCE", 0.3)
    monkeypatch.setattr(run, "device_of", lambda *_: None)
    monkeypatch.setattr(
        run.leases, "hold_many", lambda s, indices, t: run.leases._held.update({(s, i): t for i in indices})
    )

    def finished(exp: Experiment, attempt: int, host: str, token: str, hold: bool = True) -> ExperimentResult:
        return ExperimentResult(
            experiment_id=exp.experiment_id,
            project_name=exp.project,
            parameters=exp.parameters,
            status=ExperimentStatus.COMPLETED,
            metrics={"y": 1.0},
        )

    monkeypatch.setattr(run, "run_claimed", finished)
    monkeypatch.setattr(
        run,
        "settle",
        lambda exp, result, token, defer=False: Record(exp.index, exp.experiment_id, {}, "completed"),
    )
    return run


def test_a_batch_that_cannot_record_drops_its_leases_and_fails(runner: ExperimentRunner) -> None:
    experiments = tuple(
        Experiment(sweep_id="s", index=i, experiment_id=f"e{i}", project="p", parameters={"x": i})
        for i in range(3)
    )
    task = SimpleNamespace(request=SimpleNamespace(hostname="h"))
    with pytest.raises(redis.ConnectionError):
        batch.run_batch(runner, task, BatchMessage(sweep_id="s", queue="local_cpu", experiments=experiments))
    assert runner.leases._held == {}, "no lease outlives its batch"
    assert runner.state.record_calls > 1, "the rows were tried again while the broker was away"
