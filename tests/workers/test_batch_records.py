"""A batch writes its rows in chunks from a background thread while it goes on, and returns
(so that its message is acked) only once every row is written.

Unit test of :func:`workers.batch.run_batch` with its store stubbed; the real store's scripts
are tested in ``tests/orchestrator/store/test_sweeps.py``, whole batches through real workers
in ``test_batches.py``.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from core.models import Experiment, ExperimentResult, ExperimentStatus
from core.protocol import BatchMessage, Claim
from core.settings import Settings
from orchestrator.dispatch import celery_app
from orchestrator.store import Record
from workers import batch
from workers.runner import ExperimentRunner


class _Store:
    """Claims succeed; each record call notes its rows and the thread that wrote them."""

    def __init__(self) -> None:
        self.written: list[tuple[str, list[int]]] = []

    def claim_many(self, sweep_id: str, queue: str, indices: list[int], *_: Any, **__: Any) -> list[Any]:
        return [(Claim.RUN, 1) for _ in indices]

    def record_many(self, sweep_id: str, records: list[Record]) -> list[bool]:
        time.sleep(0.02)  # a round trip
        self.written.append((threading.current_thread().name, [r.index for r in records]))
        return [True] * len(records)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> ExperimentRunner:
    settings = Settings(broker_url="redis://127.0.0.1:1/0")
    run = ExperimentRunner(celery_app(settings), settings)
    run._state = _Store()  # type: ignore[assignment]
    monkeypatch.setattr(batch, "RECORD_SECONDS", 0.01)
    monkeypatch.setattr(run, "device_of", lambda *_: None)
    monkeypatch.setattr(
        run.leases, "hold_many", lambda s, indices, t: run.leases._held.update({(s, i): t for i in indices})
    )

    def finished(exp: Experiment, attempt: int, host: str, token: str, hold: bool = True) -> ExperimentResult:
        time.sleep(0.01)
        return ExperimentResult(
            experiment_id=exp.experiment_id,
            project_name=exp.project,
            parameters=exp.parameters,
            status=ExperimentStatus.COMPLETED,
        )

    monkeypatch.setattr(run, "run_claimed", finished)
    monkeypatch.setattr(
        run,
        "settle",
        lambda exp, result, token, defer=False: Record(exp.index, exp.experiment_id, {}, "completed"),
    )
    return run


def test_chunks_are_written_in_the_background_and_all_before_the_batch_returns(
    runner: ExperimentRunner,
) -> None:
    experiments = tuple(
        Experiment(sweep_id="s", index=i, experiment_id=f"e{i}", project="p", parameters={"x": i})
        for i in range(12)
    )
    task = SimpleNamespace(request=SimpleNamespace(hostname="h"))
    batch.run_batch(runner, task, BatchMessage(sweep_id="s", queue="local_cpu", experiments=experiments))
    written = runner.state.written  # type: ignore[attr-defined]
    rows = [i for _, indices in written for i in indices]
    assert rows == list(range(12)), "every row written once, in order, before run_batch returned"
    threads = {name for name, _ in written}
    assert any(name.startswith("batch-record") for name in threads), "chunks are written meanwhile"
    assert len(written) > 2, "in several chunks, not all at the end"
    assert runner.leases._held == {}, "no lease outlives its batch"
