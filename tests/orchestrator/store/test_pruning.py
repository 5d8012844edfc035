"""Conformance of the early-stopping operations (``PruningStore``) against a real Redis."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import redis

from core.protocol import Lifecycle
from orchestrator.optimizer.early_stopping import AshaRule, MedianRule, PercentileRule
from orchestrator.store import SweepState, connect
from orchestrator.store.pruning import PruningStore

SID = "s1"
Q = "local_cpu"


@pytest.fixture
def store(client: redis.Redis) -> PruningStore:
    SweepState(client).register(SID, {"state": Lifecycle.RUNNING.value, "total": 10})
    return PruningStore(client)


def _judge(store: PruningStore, eid: str, rule, curve: list[float], share: float = 1.0) -> int:
    query = rule.at_report(curve)
    if query is None:
        return 0
    return store.judge(SID, eid, query, max_share=share)


@pytest.mark.parametrize(
    "rule",
    [
        MedianRule(2, 3, curve_model=False),
        MedianRule(2, 3, compare="running_average", curve_model=False),
        PercentileRule(25.0, 2, 3, curve_model=False),
        PercentileRule(80.0, 1, 4, curve_model=False),
    ],
)
def test_quantile_rules_decide_as_the_rule_does_over_lists(store: PruningStore, rule) -> None:
    rng = np.random.default_rng(4)
    completed = [(rng.uniform(0, 1) + 1 / np.arange(1, 9)).tolist() for _ in range(7)]
    for i, curve in enumerate(completed):
        store.add_completed(SID, f"c{i}", rule.completed_entries(curve), steps=len(curve))
    decisions = []
    for j in range(30):
        running = (rng.uniform(0, 1.2) + 1 / np.arange(1, 9)).tolist()
        for t in range(1, 9):
            expected = rule.should_stop(running[:t], completed)
            got = _judge(store, f"r{j}", rule, running[:t], share=100.0)
            assert (got == 1) == expected, (j, t)
            decisions.append(expected)
            if expected:
                break
    assert any(decisions) and not all(decisions), "the sample exercises both outcomes"


def test_too_few_completed_curves_never_stop(store: PruningStore) -> None:
    rule = MedianRule(grace_steps=1, min_completed=3, curve_model=False)
    for i in range(2):
        store.add_completed(SID, f"c{i}", rule.completed_entries([0.0, 0.0]), steps=2)
    assert _judge(store, "bad", rule, [9.0]) == 0
    store.add_completed(SID, "c2", rule.completed_entries([0.0, 0.0]), steps=2)
    assert _judge(store, "bad", rule, [9.0]) == 1


def test_before_curves_complete_a_run_is_judged_among_those_that_reached_its_step(
    store: PruningStore,
) -> None:
    rule = MedianRule(1, 5, min_peers=3, curve_model=False)
    for eid in ("p", "q"):
        assert _judge(store, eid, rule, [0.0]) == 0
        assert _judge(store, eid, rule, [0.0, 0.0]) == 0
    assert _judge(store, "r", rule, [1.0]) == 1, "behind p and q, and worse than their median"
    assert _judge(store, "s", rule, [1.0, 1.0]) == 0, "no run is past step 2: it may be the last"
    assert _judge(store, "p", rule, [0.0, 0.0, 0.0]) == 0
    assert _judge(store, "t", rule, [1.0, 1.0]) == 1, "p went on past step 2: judged among p, q, s, t"


def test_adding_a_completed_curve_twice_counts_it_once(store: PruningStore, client: redis.Redis) -> None:
    rule = MedianRule(1, 1, curve_model=False)
    for _ in range(2):
        store.add_completed(SID, "c0", rule.completed_entries([1.0, 3.0]), steps=2)
    assert client.zrange(f"orch:sweep:{SID}:es:step:2", 0, -1, withscores=True) == [("c0", 1.0)], (
        "best so far"
    )


def test_asha_rung_keeps_the_best_third_of_those_that_reached_it(store: PruningStore) -> None:
    rule = AshaRule(min_resource=2, eta=3, min_peers=3)
    assert [rule.rung_of(t) for t in (1, 2, 3, 6, 18)] == [None, 0, None, 1, 2]
    store.add_completed(SID, "done", {}, steps=18)  # runs end at step 18: a rung at 2 is no end
    assert _judge(store, "a", rule, [9, 0.5]) == 0, "alone on the rung: too few peers"
    assert _judge(store, "b", rule, [9, 0.9]) == 0
    assert _judge(store, "c", rule, [9, 0.1]) == 0, "best of three goes on"
    assert _judge(store, "d", rule, [9, 0.7]) == 1, "fourth of four: not in the best 1/3"
    assert _judge(store, "e", rule, [9, 0.2]) == 1, "second of five: the best max(1, 5 // 3) = 1 go on"
    assert _judge(store, "f", rule, [9, 0.0]) == 0


def test_the_cap_holds_and_a_stopped_run_stays_stopped(store: PruningStore) -> None:
    rule = MedianRule(1, 1, curve_model=False)
    store.add_completed(SID, "c0", rule.completed_entries([0.0]), steps=2)
    verdicts = [_judge(store, f"r{i}", rule, [5.0], share=0.3) for i in range(5)]
    assert verdicts == [1, 1, 1, 2, 2], "floor(0.3 * 10) = 3 stops, then the cap refuses"
    assert _judge(store, "r0", rule, [5.0], share=0.3) == 1, "asked again: still stopped"
    assert store.stopped(SID) == {"r0", "r1", "r2"}
    assert not store.try_stop(SID, "x", 0.3) and store.try_stop(SID, "r1", 0.3)


def test_racing_clients_never_stop_more_than_the_cap(redis_url: str, store: PruningStore) -> None:
    rule = MedianRule(1, 1, curve_model=False)
    store.add_completed(SID, "c0", rule.completed_entries([0.0]), steps=2)
    verdicts: list[int] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        own = PruningStore(connect(redis_url))
        for i in range(25):
            v = _judge(own, f"w{w}-{i}", rule, [5.0], share=0.5)
            with lock:
                verdicts.append(v)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verdicts.count(1) == 5 and len(store.stopped(SID)) == 5, "floor(0.5 * 10)"


def _low_shot(store: PruningStore, client: redis.Redis, index: int, value: float, optimistic=None):
    client.hset(f"orch:sweep:{SID}:stage", index, "low_done")
    store.keep_low_shot_row(SID, index, {"experiment_id": f"e{index}", "index": index})
    return store.low_shot_rung(
        SID, Q, index, value=value, optimistic=optimistic, min_count=3, eta=3, max_share=0.5
    )


def test_low_shot_rung_decides_waiting_runs_when_it_has_enough_peers(
    store: PruningStore, client: redis.Redis
) -> None:
    assert _low_shot(store, client, 0, 0.5) == ([], [])
    assert _low_shot(store, client, 1, 0.1) == ([], []), "two of three: the runs wait"
    promoted, stopped = _low_shot(store, client, 2, 0.9)
    assert promoted == [1] and sorted(stopped) == [0, 2]
    stage = client.hgetall(f"orch:sweep:{SID}:stage")
    assert stage == {"0": "stopping", "1": "full", "2": "stopping"}
    assert client.zscore(f"orch:sweep:{SID}:pending:{Q}", "1") == 2.0, "promoted: first in line"
    assert store.stopped(SID) == {"e0", "e2"}, "the cap counts experiment ids"
    assert _low_shot(store, client, 3, 0.0) == ([3], []), "a later run is judged against the whole rung"
    assert store.low_shot_row(SID, 0) == {"experiment_id": "e0", "index": 0}


def test_low_shot_rung_spares_runs_the_cap_refuses(store: PruningStore, client: redis.Redis) -> None:
    client.hset(f"orch:sweep:{SID}:meta", "total", 3)  # floor(0.5 * 3) = 1 stop allowed
    _low_shot(store, client, 0, 0.5)
    _low_shot(store, client, 1, 0.1)
    promoted, stopped = _low_shot(store, client, 2, 0.9)
    assert len(stopped) == 1 and sorted(promoted + stopped) == [0, 1, 2]


def test_published_threshold_stops_a_low_shot_run_that_cannot_beat_it(
    store: PruningStore, client: redis.Redis
) -> None:
    store.publish_threshold(SID, -0.8)
    assert store.threshold(SID) == -0.8
    assert _low_shot(store, client, 0, -0.3, optimistic=-0.5) == ([], [0])
    assert _low_shot(store, client, 1, -0.7, optimistic=-0.9) == ([], []), "may still beat it: waits"
    store.publish_threshold(SID, None)
    assert store.threshold(SID) is None


def test_each_stop_is_recorded_with_its_rule_and_step_for_status(
    store: PruningStore, client: redis.Redis
) -> None:
    rule = MedianRule(1, 1, curve_model=False)
    store.add_completed(SID, "c0", rule.completed_entries([0.0] * 8), steps=8)
    for eid, curve in [("r0", [5.0] * 2), ("r1", [5.0] * 3), ("r2", [5.0] * 6)]:
        q = replace(rule.at_report(curve), min_count=1, step=len(curve))
        assert store.judge(SID, eid, q, max_share=0.3, rule="median") == 1
    q = replace(rule.at_report([5.0]), min_count=1, step=1)
    refused = store.judge(SID, "r3", q, max_share=0.3, rule="median")
    assert refused == 2, "the cap refused: counted as a refusal, not as a stop"
    assert store.try_stop(SID, "p0", 1.0, rule="refit", step=0), "a pending run, stopped before it started"
    assert store.try_stop(SID, "p0", 1.0, rule="refit", step=5), "stopped before: recorded once"
    client.hset(f"orch:sweep:{SID}:stage", 7, "low_done")
    store.keep_low_shot_row(SID, 7, {"experiment_id": "e7"}, shots_saved=900.0)
    store.low_shot_rung(SID, Q, 7, value=1.0, optimistic=1.0, min_count=99, eta=3, max_share=1.0)
    store.publish_threshold(SID, 0.0)
    client.hset(f"orch:sweep:{SID}:stage", 8, "low_done")
    store.keep_low_shot_row(SID, 8, {"experiment_id": "e8"}, shots_saved=900.0)
    store.low_shot_rung(SID, Q, 8, value=1.0, optimistic=0.5, min_count=99, eta=3, max_share=1.0)

    summary = store.summary(SID, total=10)
    assert summary["rules"] == {
        "median": {"stopped": 3, "step_median": 3.0, "step_min": 2, "step_max": 6},
        "refit": {"stopped": 1, "step_median": 0.0, "step_min": 0, "step_max": 0},
        "shots": {"stopped": 1},
    }
    assert summary["full_steps"] == 8
    assert summary["steps_saved"] == (8 - 2) + (8 - 3) + (8 - 6) + 8
    assert summary["steps_saved_share"] == pytest.approx(21 / 80)
    assert summary["shots_saved"] == 900.0, "only the low-shot run that stopped"
    assert summary["cap_refused"] == 1, "r3, once"


def test_summary_is_empty_before_any_stop(store: PruningStore) -> None:
    assert store.summary(SID, total=10) == {}
