"""Managed devices through the real SDK, over HTTP, against the fake Braket and moto's S3 server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from core.errors import TransientError
from core.models import Experiment, ExperimentStatus
from orchestrator.braket import BraketManagedExecutor, PollOutcome, RetryPolicy, Submission, to_result
from orchestrator.braket.prices import load_price_table
from orchestrator.store import BraketLedgers
from tests.orchestrator.braket.sources import BellSource, experiment
from tests.support.braket_env import BraketTestEnv
from tests.support.fake_devices import IONQ, IQM, SV1
from tests.support.redis_db import TestRedis


def make(env: BraketTestEnv, redis: TestRedis, **kw: Any) -> BraketManagedExecutor:
    return BraketManagedExecutor(BraketLedgers(redis.client, prefix=redis.prefix), s3_bucket=env.bucket, **kw)


def submit_until_done(ex: BraketManagedExecutor, exp: Experiment, shots: int, attempt: int = 1) -> Submission:
    """What the Celery submit task does: on TransientError, retry later with the same attempt."""
    for _ in range(50):
        try:
            return ex.submit(exp, BellSource().build(exp.parameters), shots, attempt)
        except TransientError:
            time.sleep(0.05)
    raise AssertionError("submission never succeeded")


def poll_until_terminal(ex: BraketManagedExecutor, arn: str, timeout: float = 30) -> PollOutcome:
    """What the Celery poll task does: poll with a countdown until a terminal state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            outcome = ex.poll(arn)
        except TransientError:
            outcome = None
        if outcome is not None and outcome.terminal:
            return outcome
        time.sleep(0.05)
    raise AssertionError(f"{arn} not terminal after {timeout}s")


@pytest.mark.parametrize(
    "device, shots, billed_ms, expected",
    [
        (IONQ, 100, None, 0.30 + 100 * 0.08),
        (IQM, 1000, None, 0.30 + 1000 * 0.00145),
        (SV1, 1000, None, 0.075 * 3 / 60),  # a fast task pays the 3 s minimum
        (SV1, 1000, 90_000, 0.075 * 90 / 60),  # 90 s billed: 1.5 min at $0.075/min
    ],
    ids=["ionq", "iqm", "sv1-minimum", "sv1-90s"],
)
def test_tasks_complete_with_metrics_and_price_table_costs(
    braket_env: BraketTestEnv,
    test_redis: TestRedis,
    device: str,
    shots: int,
    billed_ms: int | None,
    expected: float,
) -> None:
    braket_env.admin.faults(billed_duration_ms=billed_ms)
    ex = make(braket_env, test_redis)
    ex.budget.set_limit("sweep", 100.0)
    exp = experiment(f"e-{device}-{billed_ms}", device, shots=shots)
    sub = ex.submit(exp, BellSource().build({}), shots, attempt=1)
    assert sub.device == device and not sub.duplicate and not sub.failed_over
    assert ex.budget.status("sweep").reserved == pytest.approx(sub.estimated_cost)
    outcome = poll_until_terminal(ex, sub.task_arn)
    assert outcome.state == "COMPLETED" and outcome.billed is not None
    assert outcome.billed.shots == shots and outcome.billed.cost == pytest.approx(expected)
    assert outcome.billed.cost == pytest.approx(
        load_price_table().task_cost(
            device, shots, None if outcome.billed.duration_ms is None else outcome.billed.duration_ms / 1000
        )
    )
    result = to_result(exp, outcome, metrics=BellSource().analyze(outcome.result, {}), attempt=1)
    assert result.status == ExperimentStatus.COMPLETED and result.cost == pytest.approx(expected)
    if "/qpu/" in device:  # the fake's QPUs sample their calibration's noise
        assert 0.8 < result.metrics["p_bell"] <= 1.0
    else:
        assert result.metrics["p_bell"] == pytest.approx(1.0)
    assert result.extra["task_arn"] == sub.task_arn and result.extra["billed_shots"] == shots
    status = ex.budget.status("sweep")
    assert status.spent == pytest.approx(expected) and status.reserved == 0
    assert braket_env.admin.stats()["created_total"] == 1


def test_the_same_attempt_submitted_twice_is_one_task(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    ex = make(braket_env, test_redis)
    exp = experiment("twice", IONQ, shots=10)
    first = ex.submit(exp, BellSource().build({}), 10, attempt=1)
    again = ex.submit(exp, BellSource().build({}), 10, attempt=1)
    assert again.task_arn == first.task_arn and again.duplicate
    stats = braket_env.admin.stats()
    assert stats["created_total"] == 1 and stats["created_per_token"] == {first.client_token: 1}
    # A new attempt (after a failed task) is a new, deliberate task with its own token.
    retry = ex.submit(exp, BellSource().build({}), 10, attempt=2)
    assert retry.task_arn != first.task_arn and braket_env.admin.stats()["created_total"] == 2


def test_lost_create_responses_never_make_a_second_task(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    # Every CreateQuantumTask creates its task, then its answer is lost (500): the retry, with the
    # same clientToken, is answered with the task that exists instead of creating another.
    braket_env.admin.faults(lost_response_probability=1.0)
    ex = make(braket_env, test_redis, retry=RetryPolicy(attempts=3, base=0.01))
    sub = ex.submit(experiment("lost", SV1, shots=10), BellSource().build({}), 10, attempt=1)
    stats = braket_env.admin.stats()
    assert stats["requests"]["CreateQuantumTask"] == 2 and stats["errors"]["InternalServiceException"] == 1
    assert stats["created_total"] == 1 and stats["created_per_token"] == {sub.client_token: 1}
    assert ex.stats["retried:InternalServiceException"] == 1
    assert poll_until_terminal(ex, sub.task_arn).state == "COMPLETED"


def test_retries_exhausted_keep_the_reservation_for_the_next_try(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    ex = make(braket_env, test_redis, retry=RetryPolicy(attempts=2, base=0.01))
    warm = ex.submit(experiment("before", IONQ, shots=10), BellSource().build({}), 10, attempt=1)
    braket_env.admin.faults(throttle_probability=1.0)
    exp = experiment("throttled", IONQ, shots=10)
    with pytest.raises(TransientError, match="ThrottlingException persisted"):
        ex.submit(exp, BellSource().build({}), 10, attempt=1)
    held = ex.budget.status("sweep").reserved
    assert held == pytest.approx(2 * (0.30 + 10 * 0.08))  # the task might exist: its money stays held
    braket_env.admin.faults(throttle_probability=0.0)
    sub = ex.submit(exp, BellSource().build({}), 10, attempt=1)
    assert ex.budget.status("sweep").reserved == pytest.approx(held)  # the same reservation, not a second
    assert braket_env.admin.stats()["created_per_token"] == {warm.client_token: 1, sub.client_token: 1}


def test_twenty_percent_429_and_5xx_every_experiment_completes_once(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    braket_env.admin.faults(
        throttle_probability=0.1, error_probability=0.1, lost_response_probability=0.05, seed=7
    )
    ex = make(braket_env, test_redis, retry=RetryPolicy(attempts=6, base=0.01, cap=0.2))
    exps = [experiment(f"faulty-{i}", SV1 if i % 2 else IONQ, shots=10) for i in range(20)]
    subs = [submit_until_done(ex, e, 10) for e in exps]
    outcomes = [poll_until_terminal(ex, s.task_arn) for s in subs]
    assert all(o.state == "COMPLETED" for o in outcomes)
    bell = [o.result.measurement_probabilities for o in outcomes]
    assert all(p.get("00", 0) + p.get("11", 0) > 0.5 for p in bell)  # the QPUs' noise aside, a Bell pair
    assert all(p.keys() <= {"00", "11"} for p, e in zip(bell, exps, strict=True) if e.device == SV1)
    stats = braket_env.admin.stats()
    assert stats["created_total"] == 20 and len(stats["created_per_token"]) == 20
    assert set(stats["created_per_token"].values()) == {1}
    assert (
        stats["errors"].get("ThrottlingException", 0) > 0
        and stats["errors"].get("InternalServiceException", 0) > 0
    )
    assert ex.budget.status("sweep").spent == pytest.approx(sum(o.billed.cost for o in outcomes))


def test_failed_task_releases_its_reservation(braket_env: BraketTestEnv, test_redis: TestRedis) -> None:
    braket_env.admin.faults(fail_probability=1.0)
    ex = make(braket_env, test_redis)
    exp = experiment("doomed", IONQ, shots=10)
    sub = ex.submit(exp, BellSource().build({}), 10, attempt=1)
    outcome = poll_until_terminal(ex, sub.task_arn)
    assert outcome.state == "FAILED" and "injected" in (outcome.failure_reason or "")
    status = ex.budget.status("sweep")
    assert status.reserved == 0 and status.spent == 0
    result = to_result(exp, outcome)
    assert result.status == ExperimentStatus.FAILED and result.cost == 0 and "FAILED" in result.error_message


def test_cancel_sweep_cancels_queued_tasks(braket_env: BraketTestEnv, test_redis: TestRedis) -> None:
    braket_env.admin.device(IONQ, queue_delay=60.0)
    ex = make(braket_env, test_redis)
    subs = [
        ex.submit(experiment(f"c{i}", IONQ, sweep="to-cancel", shots=10), BellSource().build({}), 10, 1)
        for i in range(3)
    ]
    assert ex.poll(subs[0].task_arn).queue_position == "1"
    states = ex.cancel_sweep("to-cancel")
    assert set(states) == {s.task_arn for s in subs} and set(states.values()) <= {"CANCELLING", "CANCELLED"}
    assert all(poll_until_terminal(ex, s.task_arn).state == "CANCELLED" for s in subs)
    assert ex.budget.status("to-cancel").reserved == 0
    assert ex.cancel(subs[0].task_arn) == "CANCELLED"  # idempotent


def test_concurrent_simulator_quota_is_enforced_before_submitting(
    braket_env: BraketTestEnv, test_redis: TestRedis
) -> None:
    from orchestrator.braket.limits import ServiceLimits

    braket_env.admin.device(SV1, queue_delay=60.0)
    ex = make(braket_env, test_redis, limits=ServiceLimits(concurrent_tasks={SV1: 1}))
    first = ex.submit(experiment("q1", SV1, shots=10), BellSource().build({}), 10, 1)
    with pytest.raises(TransientError, match="concurrent task quota"):
        ex.submit(experiment("q2", SV1, shots=10), BellSource().build({}), 10, 1)
    assert braket_env.admin.stats()["created_total"] == 1
    assert ex.budget.status("sweep").reserved == pytest.approx(first.estimated_cost)
    ex.cancel(first.task_arn)
    poll_until_terminal(ex, first.task_arn)
    assert ex.submit(experiment("q2", SV1, shots=10), BellSource().build({}), 10, 1).task_arn


def test_client_token_handler_makes_the_real_sdk_idempotent(braket_env: BraketTestEnv) -> None:
    from braket.aws import AwsDevice

    from orchestrator.braket.aws import braket_session
    from orchestrator.braket.submissions import install_token_handler, sending_token

    device = AwsDevice(SV1, aws_session=braket_session())
    folder = (braket_env.bucket, "tokens")
    # Without a token the SDK lets botocore invent one per call: two calls, two (paid) tasks.
    plain = {device.run(BellSource().build({}), folder, shots=10).id for _ in range(2)}
    assert len(plain) == 2
    install_token_handler(device.aws_session.braket_client)
    install_token_handler(device.aws_session.braket_client)  # registering twice is harmless
    with sending_token("orch-same-token"):
        same = {device.run(BellSource().build({}), folder, shots=10).id for _ in range(2)}
    assert len(same) == 1
    stats = braket_env.admin.stats()
    assert stats["created_total"] == 3 and stats["created_per_token"]["orch-same-token"] == 1
