"""Results where every host reads them: a sweep on S3 (moto's server over HTTP), read from a
folder that has nothing of it, after its coordinator was killed mid-sweep and replaced."""

from __future__ import annotations

import io
import signal
import time
from pathlib import Path

import pandas as pd
import redis

from core.archive import pack
from orchestrator import Orchestrator
from orchestrator.api import load_results
from tests.conftest import cli, spawn_cli
from tests.orchestrator.test_many_hosts import _other_host, _project
from tests.support.s3 import S3
from tests.web.conftest import TOKEN, Server


def test_a_sweep_on_s3_is_read_from_another_folder_whole_after_a_coordinator_kill(
    s3: S3, tmp_path: Path, redis_url: str
) -> None:
    bucket = s3.bucket()
    root = f"s3://{bucket}/lab"
    a, c = tmp_path / "A", tmp_path / "C"
    c.mkdir()
    sweep = _project(a, points=12, sleep=0.3)
    digest = pack(a / "model").digest
    first = spawn_cli(
        "coordinator", "--broker", redis_url, "--results-dir", root, workdir=a, stdout=None, stderr=None
    )
    worker = _other_host(redis_url, tmp_path, "host-b").wait_ready()
    replacement = None
    try:
        submitted = cli("submit", str(sweep), "--broker", redis_url, "--results-dir", root, workdir=a)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        sid = submitted.stdout.split()[-1]
        # the archive went to the object store; Redis keeps only where it is
        assert f"lab/code/{digest}.tar.gz" in s3.keys(bucket)
        assert (
            redis.Redis.from_url(redis_url).get(f"orch:code:{digest}")
            == f"{root}/code/{digest}.tar.gz".encode()
        )
        with Orchestrator(redis_url, results_dir=root, coordinate=False) as orch:
            deadline = time.monotonic() + 60
            while orch.status(sid).finished < 3:
                assert time.monotonic() < deadline, "no results"
                time.sleep(0.1)
            first.send_signal(signal.SIGKILL)  # mid-sweep, with rows still to write
            first.wait()
            replacement = spawn_cli(
                "coordinator",
                "--broker",
                redis_url,
                "--results-dir",
                root,
                workdir=a,
                stdout=None,
                stderr=None,
            )
            final = orch.wait(sid, timeout=180)
        assert final.state == "completed" and final.counts["completed"] == 12, final
    finally:
        worker.stop()
        for proc in (first, replacement):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)

    # folder C has no results, no state and no project: everything comes from S3
    frame = load_results(sid, root)
    assert len(frame) == 12 and frame["experiment_id"].is_unique, "nothing lost, nothing twice"
    assert sorted(frame["metric.y"]) == list(range(12))
    csv = cli("results", sid, "--format", "csv", "--results-dir", root, workdir=c)
    assert csv.returncode == 0, csv.stderr
    assert len(pd.read_csv(io.StringIO(csv.stdout))) == 12
    report = cli("report", sid, "--results-dir", root, "--format", "md", "--out", "-", workdir=c)
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith("#") and sid in report.stdout
    assert f"lab/sweep={sid}/report.html" in s3.keys(bucket)  # drawn by the coordinator, beside the rows
    server = Server(c, ["--broker", redis_url, "--results-dir", root], {"ORCHESTRATOR_API_TOKEN": TOKEN})
    try:
        rows = server.wait_ready().api("GET", f"/sweeps/{sid}/results?format=json")
        assert rows.status_code == 200, rows.text
        assert len(rows.json()) == 12
    finally:
        server.stop()
    assert not (c / "results").exists()
    # the sweep is closed: its archive is gone from the object store too, its rows keep the name
    assert f"lab/code/{digest}.tar.gz" not in s3.keys(bucket)
    assert set(frame["code_version"]) == {f"sha256:{digest}"}


def test_submit_to_a_missing_bucket_exits_2_and_writes_nothing(
    s3: S3, tmp_path: Path, redis_url: str
) -> None:
    sweep = _project(tmp_path, points=2)
    proc = cli(
        "submit",
        str(sweep),
        "--broker",
        redis_url,
        "--results-dir",
        "s3://no-such-bucket/x",
        workdir=tmp_path,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no-such-bucket" in proc.stderr and "Traceback" not in proc.stderr
    assert redis.Redis.from_url(redis_url).dbsize() == 0, "no Redis keys"
    assert not (tmp_path / "results").exists() and not (tmp_path / ".orchestrator" / "logs").exists()
