"""Conformance of the store's atomic operations, each checked directly against a real Redis.

Every other test reaches these through whole sweeps; here each operation is pinned down on its
own: what it returns, what it changes, and that doing it twice changes nothing more.
"""

from __future__ import annotations

import json
import time

import pytest
import redis

from core.models import ExperimentResult, ExperimentStatus
from core.protocol import ACTIVE_STATES, Claim, Lifecycle
from core.rows import result_row
from orchestrator.store import Record, SweepState, keys
from orchestrator.store.optimizer import observation

SID = "s1"
Q = "local_cpu"


@pytest.fixture
def state(client: redis.Redis) -> SweepState:
    st = SweepState(client)
    st.register(SID, {"state": Lifecycle.RUNNING.value, "total": 3, "fill_cursor": 0})
    st.serve(SID)
    walked = [("c", Q, i, i, score) for i, score in enumerate([3.0, 2.0, 1.0])]
    assert st.pending.materialize(SID, 0, 3, True, walked) == 3
    return st


def _row(index: int, status: str = "completed", **metrics: float) -> dict:
    return {
        "index": index,
        "experiment_id": f"e{index}",
        "status": status,
        "metrics": metrics,
        "parameters": {},
    }


def _claim(st: SweepState, index: int, token: str = "t1", ttl: float = 5.0) -> tuple[Claim, int]:
    return st.claim(SID, Q, index, token, ttl, "host")


# -- pending, take and untake -------------------------------------------------------------------


def test_take_moves_the_best_pending_to_queued_and_untake_puts_them_back(
    state: SweepState, client: redis.Redis
) -> None:
    taken = state.pending.take(SID, Q, 2)
    assert taken == [("0", 3.0), ("1", 2.0)]
    assert client.smembers(f"orch:sweep:{SID}:queued:{Q}") == {"0", "1"}
    assert client.zrange(f"orch:sweep:{SID}:pending:{Q}", 0, -1) == ["2"]
    state.pending.untake(SID, Q, taken)
    assert client.scard(f"orch:sweep:{SID}:queued:{Q}") == 0
    assert client.zrange(f"orch:sweep:{SID}:pending:{Q}", 0, -1, withscores=True) == [
        ("2", 1.0),
        ("1", 2.0),
        ("0", 3.0),
    ]
    assert state.pending.take(SID, Q, 0) == [], "a full window takes nothing"
    assert state.pending.take(SID, "braket_qpu", 5) == []


def test_materialize_moves_the_cursor_with_the_experiments_once(
    state: SweepState, client: redis.Redis
) -> None:
    pending = f"orch:sweep:{SID}:pending:{Q}"
    client.hset(f"orch:sweep:{SID}:meta", mapping={"fill_done": 0, "total": 20})
    walked = [("c", Q, 3, 3, -3.0), ("c", Q, 5, 5, None)]
    assert state.pending.materialize(SID, 0, 6, False, walked) is None, "the cursor is at 3, not 0"
    assert client.zcard(pending) == 3
    assert state.pending.materialize(SID, 3, 6, False, walked, excluded=1) == 1
    meta = state.meta(SID)
    assert (meta["fill_cursor"], meta["fill_done"], meta["total"], meta["n_reused"]) == ("6", "0", "19", "1")
    assert client.hget(f"orch:sweep:{SID}:terminal", 5) == "reused"
    assert state.pending.materialize(SID, 3, 6, False, walked) is None, (
        "a second fill of a chunk does nothing"
    )


def test_picks_ahead_of_the_cursor_enter_once_and_the_cursor_skips_them(
    state: SweepState, client: redis.Redis
) -> None:
    pending = f"orch:sweep:{SID}:pending:{Q}"
    assert state.pending.materialize(SID, 3, 3, False, [("p", Q, 9, 9, 9.0)]) == 1
    assert state.pending.take(SID, Q, 1) == [("9", 9.0)]  # the pick is published (not pending any more)
    assert state.pending.materialize(SID, 3, 3, False, [("p", Q, 9, 9, 0.5), ("s", Q, 2, 2, 0.7)]) == 0
    assert client.zscore(pending, "2") == 0.7, "behind the cursor: re-scored"
    assert client.zscore(pending, "9") is None, "a pick already materialised is never added again"
    assert state.meta(SID)["n_picked"] == "1"
    walked = [("c", Q, i, i, -float(i)) for i in range(3, 12)]
    assert state.pending.materialize(SID, 3, 12, True, walked) == 8, "the walk skips the picked point"
    assert client.scard(f"orch:sweep:{SID}:picked") == 0, "passed by the cursor: forgotten"
    assert client.zscore(pending, "9") is None


# -- claim and lease ----------------------------------------------------------------------------


def test_claim_runs_once_and_counts_attempts(state: SweepState, client: redis.Redis) -> None:
    state.pending.take(SID, Q, 3)
    assert _claim(state, 0, "a") == (Claim.RUN, 1)
    assert _claim(state, 0, "b") == (Claim.LEASED, 0), "a second delivery waits for the lease"
    assert not client.sismember(f"orch:sweep:{SID}:queued:{Q}", "0"), "out of queued, into running"
    assert json.loads(client.hget(f"orch:sweep:{SID}:running", 0))["host"] == "host"
    client.delete(f"orch:sweep:{SID}:lease:0")  # the lease expired: a redelivery runs it again
    assert _claim(state, 0, "b") == (Claim.RUN, 2)


def test_claim_refuses_done_cancelled_and_unknown(state: SweepState) -> None:
    assert _claim(state, 0) == (Claim.RUN, 1)
    state.record(SID, 0, "e0", _row(0), status="completed", final=True, lease_token="t1")
    assert _claim(state, 0) == (Claim.DONE, 0)
    assert state.claim("nope", Q, 0, "t", 5, "h") == (Claim.UNKNOWN_SWEEP, 0)
    assert state.transition(SID, Lifecycle.CANCELLING, allowed=ACTIVE_STATES)
    assert _claim(state, 1) == (Claim.CANCELLED, 0)


def test_claim_many_claims_each_on_its_own(state: SweepState) -> None:
    assert _claim(state, 1, "other") == (Claim.RUN, 1)
    assert state.claim_many(SID, Q, [0, 1, 2], "t", 5, "h") == [
        (Claim.RUN, 1),
        (Claim.LEASED, 0),
        (Claim.RUN, 1),
    ]


def test_a_lease_lives_while_refreshed_and_only_by_its_holder(state: SweepState, client: redis.Redis) -> None:
    _claim(state, 0, "mine", ttl=0.3)
    state.refresh_leases([(SID, 0, "someone-else")], 0.3)
    state.refresh_leases([(SID, 0, "mine")], 10)
    assert client.pttl(f"orch:sweep:{SID}:lease:0") > 5000
    time.sleep(0.4)
    assert _claim(state, 0, "late") == (Claim.LEASED, 0)


def test_one_refresh_keeps_every_lease_of_its_holders_alive(state: SweepState, client: redis.Redis) -> None:
    _claim(state, 0, "a", ttl=0.3)
    _claim(state, 1, "b", ttl=0.3)
    _claim(state, 2, "c", ttl=0.3)
    state.refresh_leases([(SID, 0, "a"), (SID, 1, "b"), (SID, 2, "not-c")], 10)
    assert [client.pttl(f"orch:sweep:{SID}:lease:{i}") > 5000 for i in (0, 1, 2)] == [True, True, False]


def test_an_observation_from_the_result_is_the_one_from_its_row() -> None:
    result = ExperimentResult(
        experiment_id="e0",
        project_name="p",
        index=0,
        parameters={"b": 2, "a": 1.5},
        metrics={"score": 0.25},
        extra={"intermediate": [1.0, 0.5], "kind": "function"},
        status=ExperimentStatus.COMPLETED,
    )
    row = result_row(result)
    parsed = observation(row, parameters=result.parameters, metrics=result.metrics, extra=result.extra)
    assert json.loads(parsed) == json.loads(observation(row))


# -- record -------------------------------------------------------------------------------------


def test_record_is_exactly_once(state: SweepState, client: redis.Redis) -> None:
    _claim(state, 0, "t1")
    first = state.record(
        SID, 0, "e0", _row(0, score=1.0), status="completed", final=True, lease_token="t1", cost=0.5
    )
    again = state.record(
        SID, 0, "e0", _row(0, score=9.0), status="completed", final=True, lease_token="t2", cost=0.5
    )
    assert (first, again) == (True, False)
    meta = state.meta(SID)
    assert meta["n_completed"] == "1" and float(meta["cost"]) == 0.5
    assert client.xlen(f"orch:sweep:{SID}:results") == 1, "one row in the stream"
    assert client.sismember("orch:done", "e0")
    assert not client.hexists(f"orch:sweep:{SID}:running", 0)
    assert not client.exists(f"orch:sweep:{SID}:lease:0"), "the holder's lease is released"
    assert json.loads(client.hget(f"orch:sweep:{SID}:obs", 0))["metrics"] == {"score": 1.0}


def test_observations_can_leave_validation_violations_out(state: SweepState) -> None:
    verdicts = {0: "ok", 1: "violation: score=9 outside [null, 1]", 2: "warn: score: flagged"}
    rows = [{**_row(i, score=float(i)), "validation": v} for i, v in verdicts.items()]
    state.optimizer().observe(SID, rows)
    store = state.optimizer()
    assert sorted(o["index"] for o in store.observations(SID)) == [0, 1, 2]
    kept = store.observations(SID, violations=False)
    assert sorted(o["index"] for o in kept) == [0, 2], "a warning is fitted, a violation is not"
    assert {o["index"]: o["validation"] for o in kept} == {0: "ok", 2: "warn: score: flagged"}


def test_record_many_keeps_each_row_atomic(state: SweepState) -> None:
    records = [Record(i, f"e{i}", _row(i, "failed"), "failed") for i in (0, 1, 0)]
    assert state.record_many(SID, records) == [True, True, False]
    assert state.meta(SID)["n_failed"] == "2"
    assert not state.sweep_keys("never")  # nothing written for another sweep


def test_a_final_row_drops_its_attempt_count_and_a_partial_one_keeps_it(
    state: SweepState, client: redis.Redis
) -> None:
    attempts = f"orch:sweep:{SID}:attempts"
    assert _claim(state, 0, "t1") == (Claim.RUN, 1) and _claim(state, 1, "t1") == (Claim.RUN, 1)
    state.record(SID, 0, "e0", _row(0), status="completed", final=True, lease_token="t1")
    state.record_partial(SID, 1, "e1", _row(1, "partial", score=0.2), "t1")
    assert client.hgetall(attempts) == {"1": "1"}, "a partial row's experiment may still be delivered again"
    assert _claim(state, 0, "t2") == (Claim.DONE, 0), "still exactly once without it"
    assert client.hgetall(attempts) == {"1": "1"}


def test_batched_scripts_survive_a_server_that_forgot_them(state: SweepState, client: redis.Redis) -> None:
    # a restarted (or flushed) Redis has no scripts: the batch is run once, after loading them
    client.script_flush()
    assert state.claim_many(SID, Q, [0, 1], "t", 5, "h") == [(Claim.RUN, 1), (Claim.RUN, 1)]
    client.script_flush()
    records = [Record(i, f"e{i}", _row(i), "completed", lease_token="t") for i in (0, 1)]
    assert state.record_many(SID, records) == [True, True]
    assert state.meta(SID)["n_completed"] == "2"
    assert state.record_many(SID, records) == [False, False]  # and still exactly once


def test_a_partial_row_is_kept_but_not_terminal(state: SweepState, client: redis.Redis) -> None:
    _claim(state, 0, "t1")
    state.record_partial(SID, 0, "e0", _row(0, "partial", score=0.2), "t1")
    assert not state.is_terminal(SID, 0)
    assert client.hget(f"orch:sweep:{SID}:stage", 0) == "low_done"
    assert client.xlen(f"orch:sweep:{SID}:results") == 1
    assert json.loads(client.hget(f"orch:sweep:{SID}:obs", 0))["status"] == "completed", (
        "a low-fidelity result"
    )


def test_a_foreign_lease_survives_a_record(state: SweepState, client: redis.Redis) -> None:
    _claim(state, 0, "holder")
    state.record(SID, 0, "e0", _row(0), status="completed", final=True, lease_token="not-the-holder")
    assert client.get(f"orch:sweep:{SID}:lease:0") == "holder"


# -- release, orphans, queued -----------------------------------------------------------------------


def test_release_gives_back_the_attempt_and_the_lease(state: SweepState, client: redis.Redis) -> None:
    assert _claim(state, 0, "t1") == (Claim.RUN, 1)
    state.release(SID, "local_cpu", 0, "t1")
    assert not client.exists(f"orch:sweep:{SID}:lease:0")
    assert not client.hexists(f"orch:sweep:{SID}:running", 0)
    assert _claim(state, 0, "t2") == (Claim.RUN, 1), "a release is not a lost delivery"


def test_a_released_experiment_counts_as_queued_until_its_retry_starts(
    state: SweepState, client: redis.Redis
) -> None:
    assert _claim(state, 0, "t1") == (Claim.RUN, 1)
    state.release(SID, Q, 0, "t1")
    assert state.pending.awaiting(SID).queued[Q] == {0}, "its retry message is on its way"
    assert _claim(state, 0, "t2") == (Claim.RUN, 1)
    assert state.pending.awaiting(SID).queued[Q] == set()


def test_requeue_lost_returns_only_unstarted_unfinished_work(state: SweepState, client: redis.Redis) -> None:
    state.pending.take(SID, Q, 3)
    assert _claim(state, 0) == (Claim.RUN, 1)  # its message arrived meanwhile: started, not lost
    state.record(SID, 1, "e1", _row(1), status="completed", final=True)
    assert state.pending.requeue_lost(SID, Q, [0, 1, 2]) == 1
    assert client.zrange(f"orch:sweep:{SID}:pending:{Q}", 0, -1, withscores=True) == [("2", float("inf"))]
    assert client.scard(f"orch:sweep:{SID}:queued:{Q}") == 0
    assert state.pending.requeue_lost(SID, Q, [2]) == 0, "twice changes nothing"
    assert state.pending.requeue_lost(SID, Q, []) == 0


def test_awaiting_names_the_poll_of_every_running_quantum_task(state: SweepState) -> None:
    for index in (0, 1):
        _claim(state, index, f"t{index}")
    state.quantum.note(SID, 0, "arn:0", "dev", 1, "host", "t0", {"task_arn": "arn:0", "index": 0})
    state.quantum.note(SID, 1, "arn:1", "dev", 1, "host", "t1", {"task_arn": "arn:1", "index": 1})
    state.record(SID, 1, "e1", _row(1), status="completed", final=True)  # polled to its end
    waiting = state.pending.awaiting(SID)
    assert waiting.polls == {"arn:0": {"task_arn": "arn:0", "index": 0}}
    assert state.quantum.resubmit(SID, Q, 0, max_attempts=3, task_arn="arn:0")
    assert state.pending.awaiting(SID).polls == {}, (
        "a FAILED task sent back to pending has no poll to wait for"
    )


def test_orphans_come_back_first_unless_done_leased_or_a_quantum_task(
    state: SweepState, client: redis.Redis
) -> None:
    for index in (0, 1, 2):
        state.pending.take(SID, Q, 1)
        _claim(state, index, f"t{index}")
    client.delete(f"orch:sweep:{SID}:lease:0", f"orch:sweep:{SID}:lease:2")  # their workers died
    state.quantum.note(SID, 2, "arn:task/2", "dev", 1, "host", "t2")  # polled, holds no lease
    assert state.pending.requeue_orphans(SID, lambda _: Q) == 1
    assert client.zscore(f"orch:sweep:{SID}:pending:{Q}", "0") == float("inf")
    assert client.hexists(f"orch:sweep:{SID}:running", 1), "leased: still running"
    assert json.loads(client.hget(f"orch:sweep:{SID}:running", 2))["task_arn"] == "arn:task/2"
    assert state.pending.requeue_orphans(SID, lambda _: Q) == 0, "twice changes nothing"


def test_requeue_queued_returns_unstarted_unfinished_work(state: SweepState, client: redis.Redis) -> None:
    state.pending.take(SID, Q, 3)
    state.record(SID, 1, "e1", _row(1), status="completed", final=True)
    state.pending.requeue_queued(SID)
    assert client.scard(f"orch:sweep:{SID}:queued:{Q}") == 0
    assert set(client.zrange(f"orch:sweep:{SID}:pending:{Q}", 0, -1)) == {"0", "2"}


# -- lifecycle ------------------------------------------------------------------------------------


def test_transitions_apply_only_from_allowed_states(state: SweepState) -> None:
    assert state.transition(SID, Lifecycle.PAUSED, allowed=frozenset({Lifecycle.RUNNING}), paused_reason="x")
    assert not state.transition(SID, Lifecycle.PAUSED, allowed=frozenset({Lifecycle.RUNNING}))
    assert state.meta(SID)["paused_reason"] == "x"
    assert state.transition(SID, Lifecycle.CANCELLING, allowed=ACTIVE_STATES)
    assert not state.transition(SID, Lifecycle.RUNNING, allowed=ACTIVE_STATES)
    assert state.state(SID) == Lifecycle.CANCELLING


def test_pause_on_resource_pauses_and_alerts_once(state: SweepState, client: redis.Redis) -> None:
    _claim(state, 0, "a")
    _claim(state, 1, "b")
    assert state.pause_on_resource(SID, Q, 0, "a", "budget")
    assert not state.pause_on_resource(SID, Q, 1, "b", "budget")
    assert state.state(SID) == Lifecycle.PAUSED
    assert [e["message"] for e in state.events(SID)].count("sweep paused: budget") == 1
    assert client.zscore(f"orch:sweep:{SID}:pending:{Q}", "1") == float("inf"), (
        "both given back, first in line"
    )
    assert _claim(state, 0, "c") == (Claim.RUN, 1), "the attempt is returned"


def test_stop_starting_and_close(state: SweepState, client: redis.Redis) -> None:
    _claim(state, 0)
    assert state.stop_starting(SID) == (1, 0)
    assert client.zcard(f"orch:sweep:{SID}:pending:{Q}") == 0
    state.close(SID, Lifecycle.CANCELLED)
    assert state.state(SID) == Lifecycle.CANCELLED and SID not in state.served()


# -- quantum tasks ----------------------------------------------------------------------------------


def test_a_failed_quantum_task_gets_a_new_attempt_until_the_limit(
    state: SweepState, client: redis.Redis
) -> None:
    assert state.quantum.attempt(SID, 0) == 1
    _claim(state, 0, "t")
    state.quantum.note(SID, 0, "arn:1", "dev", 1, "host", "t")
    assert not client.exists(f"orch:sweep:{SID}:lease:0"), "the poll task owns it now"
    assert state.quantum.resubmit(SID, Q, 0, max_attempts=2)
    assert state.quantum.attempt(SID, 0) == 2, "a new submission attempt, so a new client token"
    assert not client.hexists(f"orch:sweep:{SID}:running", 0)
    assert not state.quantum.resubmit(SID, Q, 0, max_attempts=2), "no third task"


def test_polls_of_one_failed_task_count_it_once(state: SweepState) -> None:
    _claim(state, 0, "t")
    state.quantum.note(SID, 0, "arn:1", "dev", 1, "host", "t")
    assert state.quantum.task(SID, 0) == {"arn": "arn:1", "device": "dev", "qattempt": 1, "poll": {}}
    assert state.quantum.resubmit(SID, Q, 0, max_attempts=3, task_arn="arn:1") is True
    assert state.quantum.resubmit(SID, Q, 0, max_attempts=3, task_arn="arn:1") is None, "already handled"
    assert state.quantum.attempt(SID, 0) == 2 and state.quantum.task(SID, 0) is None
    state.quantum.note(SID, 0, "arn:2", "dev", 2, "host", "t")
    assert state.quantum.resubmit(SID, Q, 0, max_attempts=2, task_arn="arn:2") is False, "attempts used up"
    assert state.quantum.resubmit(SID, Q, 0, max_attempts=2, task_arn="arn:2") is None


# -- coordinators and workers -------------------------------------------------------------------------


def test_one_coordinator_holds_a_sweep(state: SweepState) -> None:
    assert state.registry.lock_sweep(SID, "c1", 5)
    assert state.registry.lock_sweep(SID, "c1", 5), "kept by its holder"
    assert not state.registry.lock_sweep(SID, "c2", 5)
    state.registry.coordinator_beat("c1")
    assert state.registry.coordinator_alive()
    state.registry.forget_coordinator("c1", [SID])
    assert state.registry.lock_sweep(SID, "c2", 5) and not state.registry.coordinator_alive()


def test_results_stream_is_read_once_and_survives_a_reader_that_died(state: SweepState) -> None:
    assert state.results.open(SID) == []
    state.record(SID, 0, "e0", _row(0), status="completed", final=True)
    rows = state.results.read([SID], 100)[SID]
    assert [row["index"] for _, row in rows] == [0]
    assert state.results.read([SID], 100) == {}, "read once"
    # the reader died before writing Parquet: the next one finds the row again
    assert [row["index"] for _, row in state.results.open(SID)] == [0]
    state.results.ack(SID, [entry for entry, _ in rows])
    assert state.results.open(SID) == [] and state.results.backlog(SID) == 0


def _age_worker(client: redis.Redis, host: str, seconds: float) -> None:
    info = json.loads(client.hget("orch:workers", host))
    client.hset("orch:workers", host, json.dumps({**info, "seen": info["seen"] - seconds}))


def test_worker_registry_and_lost_workers(state: SweepState, client: redis.Redis) -> None:
    state.registry.beat("w1", [Q], 2, every=1.0)
    state.registry.hold("w1", "tag-1")
    assert state.registry.consumers((Q, "braket_qpu")) == {Q: 2, "braket_qpu": 0}
    assert state.registry.lost(60) == {}
    _age_worker(client, "w1", 2.0)
    assert state.registry.lost(0.5) == {}, "never before three of its own heartbeats are missed"
    _age_worker(client, "w1", 1.5)
    assert state.registry.lost(0.5) == {"w1": ["tag-1"]}
    assert state.registry.lost(60) == {}
    state.registry.forget("w1")
    assert state.registry.live() == {} and state.registry.lost(-1) == {}


def test_a_low_shot_stage_already_run_is_not_run_again(state: SweepState) -> None:
    # A low-shot run longer than the visibility timeout is redelivered: its partial row is not
    # terminal, so only its stage tells that it ran.
    assert state.claim(SID, Q, 0, "a", 5, "h", low_shots=True) == (Claim.RUN, 1)
    state.record_partial(SID, 0, "e0", _row(0, "partial"), "a")
    assert state.claim(SID, Q, 0, "b", 5, "h", low_shots=True) == (Claim.DONE, 0)
    assert state.claim_many(SID, Q, [0, 1], "c", 5, "h", low_shots={0, 1}) == [
        (Claim.DONE, 0),
        (Claim.RUN, 1),
    ]
    assert state.claim(SID, Q, 0, "d", 5, "h") == (Claim.RUN, 2), "the full-shot run after promotion runs"


def test_give_back_returns_the_experiment_first_in_line_unless_finished(
    state: SweepState, client: redis.Redis
) -> None:
    state.pending.take(SID, Q, 3)
    assert _claim(state, 0, "a") == (Claim.RUN, 1)
    state.give_back(SID, Q, 0, "a")
    assert client.zscore(f"orch:sweep:{SID}:pending:{Q}", "0") == float("inf")
    assert not client.exists(f"orch:sweep:{SID}:lease:0") and not client.hexists(
        f"orch:sweep:{SID}:running", 0
    )
    assert _claim(state, 0, "b") == (Claim.RUN, 1), "not a lost delivery"
    state.record(SID, 0, "e0", _row(0), status="completed", final=True, lease_token="b")
    client.zrem(f"orch:sweep:{SID}:pending:{Q}", "0")
    state.give_back(SID, Q, 0, "b")
    assert client.zscore(f"orch:sweep:{SID}:pending:{Q}", "0") is None, "a finished one is never re-added"


# -- events ---------------------------------------------------------------------------------------


def test_events_get_increasing_ids_and_a_resumed_reader_gets_only_the_ones_it_missed(
    state: SweepState,
) -> None:
    ids = [state.event(SID, "info", f"step {i}") for i in range(3)]
    assert ids == [1, 2, 3]
    assert [e["message"] for e in state.events(SID)] == ["step 2", "step 1", "step 0"]  # newest first
    assert [(e["id"], e["message"]) for e in state.events_after(SID, 1)] == [(2, "step 1"), (3, "step 2")]
    assert state.events_after(SID, 3) == []
    assert state.events_after("other", 0) == []


def test_the_event_list_stays_capped_and_ids_keep_counting(state: SweepState, client: redis.Redis) -> None:
    from orchestrator.store.sweeps import EVENTS_KEPT

    for i in range(EVENTS_KEPT + 5):
        state.event(SID, "info", f"e{i}")
    assert client.llen(f"orch:sweep:{SID}:events") == EVENTS_KEPT
    after = state.events_after(SID, 0)
    assert after[0]["id"] == 6 and after[-1]["id"] == EVENTS_KEPT + 5


def test_an_idle_coordinator_is_woken_by_a_served_sweep_and_told_so(
    state: SweepState, client: redis.Redis
) -> None:
    # told: its loop then serves the sweep at once instead of pausing as after an idle wait
    client.delete(keys.WAKE)  # wake-ups left by the sweeps other tests served
    assert state.wait_for_sweeps(0.05) is False  # nothing served: its wait ran out
    state.serve("s-1")
    assert state.wait_for_sweeps(5.0) is True  # it took the wake-up the served sweep left
    assert client.llen(keys.WAKE) == 0
    assert state.wait_for_sweeps(0) is False  # never blocks for ever
