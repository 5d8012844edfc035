"""``device: auto`` through real workers, a real coordinator, the real SDK and the fake Braket
service over HTTP (results in moto's S3): each row says where it ran and why, and a coordinator
restarted mid-sweep keeps the devices chosen at submit, so no task is paid twice."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import redis
import yaml

from orchestrator import Orchestrator, load_results
from orchestrator.validation import validate
from tests.conftest import cli, spawn_cli
from tests.support.auto_device import auto_sweep
from tests.support.braket_env import braket_env, braket_services  # noqa: F401 - fixtures
from tests.support.fake_devices import DM1, IONQ, IQM
from tests.support.waiting import wait_until


@pytest.fixture
def paid(
    braket_env,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("ORCHESTRATOR_BRAKET_S3_BUCKET", braket_env.bucket)
    monkeypatch.setenv("ORCHESTRATOR_POLL_INTERVAL", "0.3")
    return braket_env


def test_rows_say_which_device_auto_chose_and_why(paid, workdir: Path, redis_url: str, start_worker) -> None:
    # a noiseless circuit runs free on local:sv; one with a noise channel needs a noise simulator
    sweep = auto_sweep({"n": [2, 3], "noise": [0.0, 0.05]}, devices=["local:sv", DM1], resource="braket_sim")
    start_worker("sim", concurrency=2, queues="braket_sim")
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(sweep).execution_id
        final = orch.wait(sid, timeout=120)
        frame = orch.results(sid)
    assert final.state == "completed" and (frame["status"] == "completed").all(), frame["error_message"]
    by_noise = {noise: set(rows["device"]) for noise, rows in frame.groupby("param.noise")}
    assert by_noise == {0.0: {"local:sv"}, 0.05: {DM1}}
    for row in frame.to_dict("records"):
        choice = json.loads(row["extra"])["device_choice"]
        assert choice["device"] == row["device"]
        assert choice["shape"].startswith(f"{row['param.n']} qubits")
        if row["device"] == DM1:
            assert "device does not simulate noise" in choice["candidates"]["local:sv"]
            assert row["cost"] > 0
        else:
            assert "more than LocalSimulator" in choice["candidates"][DM1]
            assert pd.isna(row["cost"]) or row["cost"] == 0, "a local simulator is never paid"
    assert paid.admin.stats()["created_total"] == 2  # only the noisy points were paid for


def test_a_restarted_coordinator_keeps_the_devices_chosen_at_submit(
    paid, workdir: Path, redis_url: str, start_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid.admin.device(IQM, queue_delay=1.0)  # tasks still queued when the coordinator dies
    monkeypatch.setenv("ORCHESTRATOR_PUBLISH_WINDOW", "2")  # most points still unpublished then
    sweep = workdir / "auto.yaml"
    sweep.write_text(
        yaml.safe_dump(
            auto_sweep(
                {"n": list(range(2, 12))}, devices=[IONQ, IQM], require_qpu=True, resource="braket_qpu"
            )
        )
    )
    start_worker("qpu", concurrency=2, queues="braket_qpu")
    first = spawn_cli(
        "run", str(sweep), "--broker", redis_url, "--yes", workdir=workdir,
        stdout=open(workdir / "run.log", "w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_until(lambda: paid.admin.stats()["created_total"] >= 2, timeout=90, what="paid tasks")
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(3)  # what the dead coordinator published is submitted; the rest waits for the next one
    assert paid.admin.stats()["created_total"] < 10
    # Re-planned where IonQ is now the cheaper QPU: choosing again would move the sweep's
    # unfinished points to IonQ (new experiment ids, new tasks). The stored choice keeps them.
    prices = workdir / "prices.yaml"
    prices.write_text(
        "as_of: '2030-01-01'\ncurrency: USD\ndevices:\n"
        "  - {match: 'arn:aws:braket:*::device/qpu/ionq/*', kind: qpu, per_task: 0.01, per_shot: 0.0}\n"
        "  - {match: 'arn:aws:braket:*::device/qpu/iqm/*', kind: qpu, per_task: 0.30, per_shot: 0.00145}\n"
    )
    flipped = {"ORCHESTRATOR_PRICE_TABLE": str(prices)}
    chosen_now = cli("estimate", str(sweep), workdir=workdir, **flipped)
    assert f"-> {IONQ}" in " ".join(chosen_now.stdout.split()), (
        chosen_now.stdout + chosen_now.stderr
    )  # what choosing again gives
    again = cli("run", str(sweep), "--broker", redis_url, "--yes", workdir=workdir, timeout=180, **flipped)
    assert again.returncode == 0 and "resuming sweep" in again.stdout, again.stdout + again.stderr
    sweep_id = next(
        iter(redis.Redis.from_url(redis_url, decode_responses=True).scan_iter("orch:sweep:*:meta"))
    )
    frame = load_results(sweep_id.split(":")[2])
    # but the sweep runs where it was submitted: every point on IQM, each paid once
    assert len(frame) == 10 and (frame["status"] == "completed").all(), frame["error_message"]
    assert set(frame["device"]) == {IQM} and frame["experiment_id"].is_unique
    assert {json.loads(e)["device_choice"]["device"] for e in frame["extra"]} == {IQM}
    stats = paid.admin.stats()
    assert stats["created_total"] == 10 and all(n == 1 for n in stats["created_per_token"].values())
    assert all(b["device"] == IQM for b in stats["billed"].values())


def test_failover_works_on_top_of_the_choice(paid, workdir: Path, redis_url: str, start_worker) -> None:
    sweep = auto_sweep(
        {"n": [2, 3]}, devices=[IONQ, IQM], require_qpu=True, failover=["local:dm"], resource="braket_qpu"
    )
    start_worker("qpu", concurrency=1, queues="braket_qpu")
    with Orchestrator(redis_url) as orch:
        validated = validate(sweep, orch.settings)  # IQM is chosen while it is online ...
        paid.admin.device(IQM, status="OFFLINE")  # ... and goes offline before the first task
        sid = orch.submit(validated).execution_id
        final = orch.wait(sid, timeout=120)
        frame = orch.results(sid)
    assert final.state == "completed" and (frame["status"] == "completed").all(), frame["error_message"]
    assert set(frame["device"]) == {"local:dm"}, "the chosen device's failover ran it, never IonQ"
    for extra in map(json.loads, frame["extra"]):
        assert extra["device_choice"]["device"] == IQM and extra["requested_device"] == IQM
        assert "OFFLINE" in extra["failover_reason"].upper()
    assert paid.admin.stats()["created_total"] == 0
