"""A message the broker lost is sent again: a worker killed between popping a message and noting
it unacked (kombu does the two in separate round trips) must not leave an experiment queued for
ever, nor a paid quantum task unpolled and its result unrecorded."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis
import yaml

from orchestrator import Orchestrator
from tests.conftest import executions, write_sweep
from tests.support.braket_env import braket_env, braket_services  # noqa: F401 - fixtures
from tests.support.fake_devices import IONQ
from tests.support.waiting import wait_until
from tests.workers.test_braket_faults import assert_money_adds_up, paid_env  # noqa: F401 - fixture
from tests.workers.test_braket_sweeps import _sweep


def _events(client: redis.Redis, sweep_id: str) -> str:
    return " ".join(e.decode() for e in client.lrange(f"orch:sweep:{sweep_id}:events", 0, -1))


def test_a_run_message_lost_on_its_way_to_a_worker_is_sent_again(
    workdir: Path, redis_url: str, start_worker
) -> None:
    client = redis.Redis.from_url(redis_url)
    sweep = yaml.safe_load(write_sweep(workdir, points=6, sleep=0.05).read_text())
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(sweep).execution_id
        wait_until(lambda: client.llen("local_cpu") > 0, what="a published message")
        lost = json.loads(client.rpop("local_cpu"))  # the next delivery, popped by a worker that died
        assert lost["headers"]["task"].startswith("orchestrator.run")
        start_worker("w")
        final = orch.wait(sid, timeout=90)
        frame = orch.results(sid)
    assert final.state == "completed", frame[["status", "error_message"]]
    assert sorted(frame["param.x"]) == list(range(6)) and (frame["status"] == "completed").all()
    assert all(n == 1 for n in executions(workdir).values()), "every point ran exactly once"
    assert "whose message was lost back to pending" in _events(client, sid)


def test_a_lost_poll_message_is_sent_again_and_the_paid_result_recorded(
    paid_env,  # noqa: F811
    workdir: Path,
    redis_url: str,
    start_worker,
) -> None:
    paid_env.admin.device(IONQ, queue_delay=4)
    client = redis.Redis.from_url(redis_url)
    first = start_worker("first", concurrency=2, queues="braket_qpu")
    with Orchestrator(redis_url, worker_lost_after=3) as orch:
        sid = orch.submit(_sweep(IONQ, "braket_qpu", gammas=[0.2, 0.4])).execution_id
        running = f"orch:sweep:{sid}:running"

        def both_polled() -> bool:
            tasks = [json.loads(v) for v in client.hvals(running)]
            return len(tasks) == 2 and all("task_arn" in t for t in tasks)

        wait_until(both_polled, what="two submitted quantum tasks")
        time.sleep(0.5)  # the submit messages acked: only the two poll messages remain
        first.kill()
        client.delete("unacked", "unacked_index", "braket_qpu")  # both poll messages lost
        start_worker("second", concurrency=2, queues="braket_qpu")
        final = orch.wait(sid, timeout=90)
        frame = orch.results(sid)
    assert final.state == "completed", frame[["status", "error_message"]]
    assert (frame["status"] == "completed").all() and len(frame) == 2
    stats = paid_env.admin.stats()
    assert stats["created_total"] == 2, "polled again, never submitted again"
    assert_money_adds_up(frame, stats, redis_url, sid)
    assert _events(client, sid).count("poll message of quantum task") == 2
