"""A batch makes its results and writes its rows from a background thread while its next
experiments run, and returns (so that its message is acked) only once every row is written;
one whose rows cannot be recorded (the broker is gone) still lets go of its leases.

Unit tests of :func:`workers.batch.run_batch` with its store stubbed; the real store's scripts
are tested in ``tests/orchestrator/store/test_sweeps.py``, whole batches through real workers
in ``test_batches.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from core.errors import TransientError
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
        self.released: list[int] = []

    def claim_many(self, sweep_id: str, queue: str, indices: list[int], *_: Any, **__: Any) -> list[Any]:
        return [(Claim.RUN, 1) for _ in indices]

    def record_many(self, sweep_id: str, records: list[Record]) -> list[bool]:
        time.sleep(0.02)  # a round trip
        self.written.append((threading.current_thread().name, [r.index for r in records]))
        return [True] * len(records)

    def release(self, sweep_id: str, queue: str, index: int, token: str) -> None:
        self.released.append(index)


class _DeadStore(_Store):
    """Claims succeed; then the broker is gone for every record."""

    record_calls = 0

    def record_many(self, sweep_id: str, records: list[Record]) -> list[bool]:
        self.record_calls += 1
        raise redis.ConnectionError("Connection closed by server.")


class _Runs:
    """What the stubbed runner did: runs started, results made (and on which thread)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, str]] = []
        self.sent: list[int] = []


@pytest.fixture
def runs() -> _Runs:
    return _Runs()


def _runner(
    monkeypatch: pytest.MonkeyPatch, store: _Store, runs: _Runs, result: Any = None
) -> ExperimentRunner:
    """A runner whose runs take 10 ms; ``result(exp)`` makes each result (a completed one by default)."""
    settings = Settings(broker_url="redis://127.0.0.1:1/0")
    run = ExperimentRunner(celery_app(settings), settings)
    run._state = store  # type: ignore[assignment]
    monkeypatch.setattr(batch, "RECORD_SECONDS", 0.01)
    monkeypatch.setattr(batch, "RECORD_PATIENCE", 0.3)
    monkeypatch.setattr(run, "device_of", lambda *_: None)
    monkeypatch.setattr(run, "backoff", lambda *_: 0)
    monkeypatch.setattr(
        run.leases, "hold_many", lambda s, indices, t: run.leases._held.update({(s, i): t for i in indices})
    )
    monkeypatch.setattr(batch, "_send_single", lambda runner, exp, countdown=0: runs.sent.append(exp.index))

    def start(exp: Experiment, attempt: int, host: str) -> Callable[[], ExperimentResult]:
        runs.events.append(("ran", exp.index, threading.current_thread().name))
        time.sleep(0.01)

        def finish() -> ExperimentResult:
            runs.events.append(("made", exp.index, threading.current_thread().name))
            if result is not None:
                return result(exp)
            return ExperimentResult(
                experiment_id=exp.experiment_id,
                project_name=exp.project,
                parameters=exp.parameters,
                status=ExperimentStatus.COMPLETED,
            )

        return finish

    monkeypatch.setattr(run, "start_claimed", start)
    monkeypatch.setattr(
        run,
        "settle",
        lambda exp, result, token, defer=False: Record(exp.index, exp.experiment_id, {}, "completed"),
    )
    return run


def _batch(runner: ExperimentRunner, n: int) -> str:
    experiments = tuple(
        Experiment(sweep_id="s", index=i, experiment_id=f"e{i}", project="p", parameters={"x": i})
        for i in range(n)
    )
    task = SimpleNamespace(request=SimpleNamespace(hostname="h"))
    return batch.run_batch(
        runner, task, BatchMessage(sweep_id="s", queue="local_cpu", experiments=experiments)
    )


def test_chunks_are_written_in_the_background_and_all_before_the_batch_returns(
    monkeypatch: pytest.MonkeyPatch, runs: _Runs
) -> None:
    runner = _runner(monkeypatch, store := _Store(), runs)
    _batch(runner, 12)
    rows = [i for _, indices in store.written for i in indices]
    assert rows == list(range(12)), "every row written once, in order, before run_batch returned"
    threads = {name for name, _ in store.written}
    assert any(name.startswith("batch-record") for name in threads), "chunks are written meanwhile"
    assert len(store.written) > 2, "in several chunks, not all at the end"
    assert runner.leases._held == {}, "no lease outlives its batch"


def test_results_are_made_off_the_batch_thread_while_the_next_run_goes(
    monkeypatch: pytest.MonkeyPatch, runs: _Runs
) -> None:
    _batch(_runner(monkeypatch, _Store(), runs), 6)
    made = [(i, thread) for what, i, thread in runs.events if what == "made"]
    assert [i for i, _ in made] == list(range(6)), "every result made once, in run order"
    assert all(thread.startswith("batch-record") for _, thread in made), made
    ran = {i: runs.events.index(("ran", i, threading.current_thread().name)) for i in range(6)}
    assert any(runs.events.index(("made", i, t)) > ran[i + 1] for i, t in made[:-1]), (
        "a result is made while the next experiment runs, not before it starts"
    )


def test_a_transient_failure_made_in_the_background_goes_back_alone(
    monkeypatch: pytest.MonkeyPatch, runs: _Runs
) -> None:
    def result(exp: Experiment) -> ExperimentResult:
        return ExperimentResult(
            experiment_id=exp.experiment_id,
            project_name=exp.project,
            parameters=exp.parameters,
            status=ExperimentStatus.FAILED if exp.index == 2 else ExperimentStatus.COMPLETED,
            error_class=TransientError.kind if exp.index == 2 else None,
        )

    _batch(_runner(monkeypatch, store := _Store(), runs, result), 5)
    assert store.released == [2] and runs.sent == [2], "released and sent back as a message of its own"
    assert sorted(i for _, indices in store.written for i in indices) == [0, 1, 3, 4]


def test_a_result_that_cannot_be_made_fails_the_batch_after_the_others_are_written(
    monkeypatch: pytest.MonkeyPatch, runs: _Runs
) -> None:
    def result(exp: Experiment) -> ExperimentResult:
        if exp.index == 1:
            raise RuntimeError("a bug while making the row")
        return ExperimentResult(
            experiment_id=exp.experiment_id,
            project_name="p",
            parameters=exp.parameters,
            status=ExperimentStatus.COMPLETED,
        )

    runner = _runner(monkeypatch, store := _Store(), runs, result)
    with pytest.raises(RuntimeError, match="a bug"):
        _batch(runner, 4)
    made = sorted(i for what, i, _ in runs.events if what == "made" and i != 1)
    assert 0 in made and sorted(i for _, indices in store.written for i in indices) == made, (
        "every other result made is written; the batch stops running new ones"
    )
    assert runner.leases._held == {}, "no lease outlives its batch"


def test_a_batch_that_cannot_record_drops_its_leases_and_fails(
    monkeypatch: pytest.MonkeyPatch, runs: _Runs
) -> None:
    runner = _runner(monkeypatch, store := _DeadStore(), runs)
    with pytest.raises(redis.ConnectionError):
        _batch(runner, 3)
    assert runner.leases._held == {}, "no lease outlives its batch"
    assert store.record_calls > 1, "the rows were tried again while the broker was away"


def test_a_batch_keeps_one_project_loaded_at_a_time() -> None:
    from adapters import adapt_project
    from core.project import ProjectSpec
    from tests.conftest import FIXTURES
    from workers.runner import _Session

    def adapter(name: str, entry: str) -> Any:
        root = FIXTURES / "projects" / name
        return adapt_project(
            root, ProjectSpec.model_validate({"name": name, "path": str(root), "entry": entry})
        )

    first, second = adapter("counter", "counter:run"), adapter("flaky", "flaky:same_dict")
    session = _Session()
    session.enter(first)
    session.enter(first)
    assert first._captures is not None, "loaded once for its runs"
    session.enter(second)  # a batch that mixes projects
    assert first._captures is None and second._captures is not None, "the first let go before the second"
    session.close()
    assert second._captures is None
