"""Managed Braket devices through real workers, the real SDK and the fake Braket service over
HTTP (results in moto's S3 server): costs, idempotent submission, budgets, throttling, bad input."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import redis

from orchestrator import Orchestrator
from orchestrator.braket.prices import load_price_table
from tests.conftest import ROOT, cli, write_sweep
from tests.support.braket_env import braket_env, braket_services  # noqa: F401 - fixtures
from tests.support.fake_devices import IONQ, IQM, SV1

QAOA = ROOT / "examples" / "projects" / "qaoa_maxcut"


def _sweep(device: str, resource: str, *, gammas=(0.3, 0.6), shots=(100,), name="paid", **extra) -> dict:
    return {
        "name": name,
        "projects": [{"name": "qaoa", "path": str(QAOA), "device": device, "resource": resource}],
        "parameters": {
            "gamma": list(gammas),
            "beta": [0.3],
            "p": [1],
            "graph": ["triangle"],
            "shots": list(shots),
        },
        "adaptive_sampling": False,
        **extra,
    }


@pytest.fixture
def paid_env(braket_env, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    monkeypatch.setenv("ORCHESTRATOR_BRAKET_S3_BUCKET", braket_env.bucket)
    monkeypatch.setenv("ORCHESTRATOR_POLL_INTERVAL", "0.3")
    return braket_env


def test_qpu_and_sv1_sweeps_complete_with_price_table_costs(
    paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    start_worker("braket", concurrency=2, queues="braket_sim,braket_qpu")
    prices = load_price_table()
    with Orchestrator(redis_url) as orch:
        qpu = orch.submit(_sweep(IONQ, "braket_qpu", name="qpu")).execution_id
        sim = orch.submit(_sweep(SV1, "braket_sim", name="sv1", shots=(200,))).execution_id
        finals = {k: orch.wait(k, timeout=120) for k in (qpu, sim)}
        frames = {k: orch.results(k) for k in (qpu, sim)}
    for sid, final in finals.items():
        assert final.state == "completed", (sid, frames[sid][["status", "error_message"]])
        assert (frames[sid]["status"] == "completed").all()
        assert frames[sid]["metric.approx_ratio"].between(0, 1).all()

    qpu_rows = frames[qpu]
    ionq = prices.price_for(IONQ)
    assert qpu_rows["cost"].tolist() == pytest.approx([ionq.per_task + ionq.per_shot * 100] * 2)
    assert finals[qpu].cost == pytest.approx(2 * (ionq.per_task + ionq.per_shot * 100))
    assert set(qpu_rows["device"]) == {IONQ}
    sv1 = prices.price_for(SV1)
    for row in frames[sim].to_dict("records"):
        extra = json.loads(row["extra"])
        seconds = max(extra["billed_duration_ms"] / 1000, sv1.minimum_seconds)
        assert row["cost"] == pytest.approx(sv1.per_minute * seconds / 60)
    assert paid_env.admin.stats()["created_total"] == 4


def test_worker_killed_right_after_create_never_pays_twice(
    paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    paid_env.admin.faults(create_response_delay=3.0)  # the task exists; the worker has not heard back
    victim = start_worker("victim", concurrency=1, queues="braket_qpu")
    with Orchestrator(redis_url, visibility_timeout=6) as orch:
        sid = orch.submit(_sweep(IONQ, "braket_qpu", gammas=(0.2, 0.4, 0.6))).execution_id
        deadline = time.monotonic() + 30
        while paid_env.admin.stats()["created_total"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert paid_env.admin.stats()["created_total"] >= 1
        victim.kill()  # between CreateQuantumTask and recording the ARN
        paid_env.admin.faults(create_response_delay=0.0)
        start_worker("rescuer", concurrency=1, queues="braket_qpu")
        final = orch.wait(sid, timeout=120)
        frame = orch.results(sid)
    assert final.state == "completed" and (frame["status"] == "completed").all() and len(frame) == 3
    stats = paid_env.admin.stats()
    assert stats["created_total"] == 3, "exactly one quantum task per experiment"
    assert all(n == 1 for n in stats["created_per_token"].values())


def test_budget_race_four_workers_never_overspend(
    paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    ionq = load_price_table().price_for(IONQ)
    per_task = ionq.per_task + ionq.per_shot * 100
    k = 3
    for name in ("a", "b", "c", "d"):
        start_worker(name, concurrency=1, queues="braket_qpu")
    with Orchestrator(redis_url, publish_window=8) as orch:
        sweep = _sweep(
            IONQ, "braket_qpu", gammas=[0.1 * i for i in range(1, 11)], budget_limit=k * per_task + 0.01
        )
        sid = orch.submit(sweep).execution_id
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = orch.status(sid)
            if status.state == "paused" and status.counts["running"] == 0:
                break
            time.sleep(0.2)
        status = orch.status(sid)
    assert status.state == "paused"
    assert any(e["level"] == "alert" and "budget" in e["message"].lower() for e in status.events), (
        status.events
    )
    assert paid_env.admin.stats()["created_total"] <= k
    assert status.cost <= k * per_task + 0.01 + 1e-9


def test_injected_throttling_and_5xx_every_experiment_completes_once(
    paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    paid_env.admin.faults(throttle_probability=0.1, error_probability=0.1, seed=7)
    start_worker("w", concurrency=2, queues="braket_sim,braket_qpu")
    with Orchestrator(redis_url, retry_backoff=0.1, retry_backoff_max=0.5, max_retries=50) as orch:
        sid = orch.submit(_sweep(SV1, "braket_sim", gammas=[0.1 * i for i in range(1, 9)])).execution_id
        final = orch.wait(sid, timeout=180)
        frame = orch.results(sid)
    assert final.state == "completed" and final.counts["completed"] == 8
    assert (frame["status"] == "completed").all() and frame["experiment_id"].is_unique
    stats = paid_env.admin.stats()
    assert stats["created_total"] == 8 and all(n == 1 for n in stats["created_per_token"].values())
    assert sum(stats["errors"].values()) > 0, "faults were injected"


def test_braket_unreachable_paid_work_waits_and_retries_while_local_work_runs(
    paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    # the first worker's Braket endpoint is a closed port: every call fails to connect
    start_worker(
        "cut-off",
        concurrency=2,
        queues="local_cpu,braket_sim",
        env={"AWS_ENDPOINT_URL_BRAKET": "http://127.0.0.1:9"},
    )
    local = write_sweep(workdir, points=8)
    with Orchestrator(redis_url, retry_backoff=0.2, retry_backoff_max=1.0, max_retries=200) as orch:
        paid = orch.submit(_sweep(SV1, "braket_sim", gammas=[0.1 * i for i in range(1, 5)])).execution_id
        assert orch.wait(orch.submit(local).execution_id, timeout=120).state == "completed"
        time.sleep(2)  # several failed attempts at the paid work
        waiting = orch.status(paid)
        assert (
            waiting.state == "running" and waiting.counts["failed"] == 0 and waiting.counts["completed"] == 0
        )
        assert paid_env.admin.stats()["created_total"] == 0
        log = (workdir / "worker-cut-off.log").read_text()
        assert "Braket unreachable (EndpointConnectionError)" in log
        # it gives the paid work back and stops taking it, instead of deferring each message in turn
        assert "stops consuming braket_sim" in log
        assert log.count("given back") <= 4, (
            "each experiment tried at most once on a worker that cannot submit"
        )
        start_worker("connected", concurrency=2, queues="braket_sim")  # Braket is reachable again
        final = orch.wait(paid, timeout=180)
        frame = orch.results(paid)
    assert final.state == "completed" and final.counts["completed"] == 4, frame[["status", "error_message"]]
    assert frame["experiment_id"].is_unique and set(frame["worker_host"]) == {
        f"connected@{os.uname().nodename}"
    }
    stats = paid_env.admin.stats()
    assert stats["created_total"] == 4 and all(n == 1 for n in stats["created_per_token"].values())
    assert "127.0.0.1:9" not in " ".join(frame["error_message"].dropna())


GHZ = ROOT / "tests" / "fixtures" / "projects" / "ghz_circuit"
BAD = {
    "unknown_arn": ("arn:aws:braket:us-east-1::device/qpu/nobody/Nothing", 3, 100, None, "device"),
    "shots_beyond_range": (IONQ, 3, 10_000_000, None, "shots"),
    "circuit_too_wide": (IQM, 200, 100, None, "qubits"),
    "negative_budget": (IONQ, 3, 100, -5, "budget_limit"),
    "budget_below_cheapest_task": (IONQ, 3, 100, 0.05, "budget"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_paid_input_exits_2_and_submits_nothing(
    case: str, paid_env, workdir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    device, n, shots, budget, word = BAD[case]
    sweep = {
        "name": "paid",
        "projects": [
            {
                "name": "ghz",
                "path": str(GHZ),
                "device": device,
                "resource": "braket_qpu",
                "circuit": {"build": "ghz:build", "analyze": "ghz:analyze"},
            }
        ],
        "parameters": {"n": [2, n], "shots": [shots]},
        "adaptive_sampling": False,
    }
    if budget is not None:
        sweep["budget_limit"] = budget
    path = workdir / "paid.yaml"
    path.write_text(yaml.safe_dump(sweep))
    proc = cli("run", str(path), "--broker", redis_url, "--yes", workdir=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert word in proc.stderr and "paid.yaml" in proc.stderr, proc.stderr
    assert paid_env.admin.stats()["created_total"] == 0
    assert redis.Redis.from_url(redis_url).dbsize() == 0
    assert not (workdir / "results").exists()


def test_offline_device_fails_over_to_the_configured_alternative(
    paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    paid_env.admin.device(IONQ, status="OFFLINE")
    start_worker("w", concurrency=1, queues="braket_qpu")
    sweep = {
        "name": "failover",
        "projects": [
            {
                "name": "ghz",
                "path": str(GHZ),
                "device": IONQ,
                "failover": [IQM],
                "resource": "braket_qpu",
                "circuit": {"build": "ghz:build", "analyze": "ghz:analyze"},
            }
        ],
        "parameters": {"n": [2, 3], "shots": [100]},
        "adaptive_sampling": False,
    }
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(sweep).execution_id
        final = orch.wait(sid, timeout=120)
        frame = orch.results(sid)
    assert final.state == "completed" and (frame["status"] == "completed").all(), final.events
    assert frame["metric.ghz_fidelity"].gt(0.8).all()  # a noisy QPU: about 0.93 on average
    assert set(frame["device"]) == {IQM}, "ran on the alternative"
    reasons = [json.loads(e).get("failover_reason") for e in frame["extra"]]
    assert all(r and "OFFLINE" in r.upper() for r in reasons), reasons


def test_cancelling_a_sweep_cancels_its_queued_quantum_tasks(
    paid_env, workdir: Path, redis_url: str, start_worker
) -> None:
    paid_env.admin.device(IONQ, queue_delay=600)  # a QPU queue that takes long
    start_worker("w", concurrency=1, queues="braket_qpu")
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(_sweep(IONQ, "braket_qpu", gammas=(0.2, 0.4))).execution_id
        deadline = time.monotonic() + 60
        while paid_env.admin.stats()["created_total"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert orch.status(sid).counts["running"] == 2, "submitted, and no worker is waiting on them"
        assert orch.cancel(sid)
        final = orch.wait(sid, timeout=60)
        frame = orch.results(sid)
    assert final.state == "cancelled" and final.counts["cancelled"] == 2
    assert set(frame["status"]) == {"cancelled"}
    states = set(paid_env.admin.stats()["tasks"].values())
    assert states and states <= {"CANCELLING", "CANCELLED"}, states
