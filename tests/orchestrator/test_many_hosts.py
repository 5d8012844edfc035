"""Many machines, nothing shared but Redis: the sweep's code travels with it.

A "host" here is a worker process started in a folder of its own with its own state folder, so
it has neither the submitter's folder nor its cache; where the suite runs as root with
``unshare``, also in a mount namespace in which the submitter's folder is hidden.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import redis
import yaml

from core.archive import pack
from orchestrator import Orchestrator
from tests.conftest import Worker, cli

MODEL = """import time

VERSION = {version}


def run(x, sleep=0.0):
    time.sleep(sleep)
    return {{"y": x * VERSION, "version": VERSION}}
"""


def _project(
    folder: Path, *, version: int = 1, points: int = 6, sleep: float = 0.0, name: str = "model"
) -> Path:
    """A project folder ``folder/<name>`` and a sweep file beside it; returns the sweep file."""
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / f"{name}.py").write_text(MODEL.format(version=version))
    sweep = {
        "name": f"ship-{name}",
        "projects": [{"name": name, "path": f"./{name}", "entry": f"{name}:run"}],
        "parameters": {"x": {"kind": "int", "start": 0, "stop": points - 1}, "sleep": [sleep]},
        "adaptive_sampling": False,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def _other_host(redis_url: str, workdir: Path, host: str, **kw) -> Worker:
    """A worker in its own folder, with its own state folder (its own code cache)."""
    home = workdir / host
    home.mkdir()
    env = {"ORCHESTRATOR_STATE_DIR": str(home / ".orchestrator")}
    return Worker(redis_url, workdir, host, concurrency=2, env=env, cwd=home, **kw)


def _run_elsewhere(tmp_path: Path, redis_url: str, hide: bool) -> None:
    a = tmp_path / "A"
    sweep = _project(a)
    expected = pack(a / "model").code_version
    with Orchestrator(redis_url, results_dir=str(tmp_path / "results")) as orch:
        sid = orch.submit(sweep).execution_id
        wrap = None
        if hide:  # the worker's machine has no folder A at all: an empty file system over it
            script = f'mount -t tmpfs none "{a}" && test ! -e "{a}/model" && exec "$0" "$@"'
            wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        else:
            shutil.rmtree(a / "model")  # deleted before any worker starts
        worker = _other_host(redis_url, tmp_path, "host-b", wrap=wrap).wait_ready()
        try:
            final = orch.wait(sid, timeout=120)
            frame = orch.results(sid)
        finally:
            worker.stop()
    assert final.state == "completed", final
    assert len(frame) == 6 and set(frame["status"]) == {"completed"}, frame[["status", "error_message"]]
    assert set(frame["code_version"]) == {expected}
    assert sorted(frame["metric.y"]) == [0, 1, 2, 3, 4, 5]
    cached = tmp_path / "host-b" / ".orchestrator" / "code" / expected.removeprefix("sha256:")
    assert (cached / "model.py").is_file()


def test_a_worker_without_the_folder_runs_the_shipped_code(tmp_path: Path, redis_url: str) -> None:
    _run_elsewhere(tmp_path, redis_url, hide=False)


@pytest.mark.skipif(  # in CI (root, unshare) it always runs: a missing unshare fails there
    not os.environ.get("CI") and (os.geteuid() != 0 or shutil.which("unshare") is None),
    reason="needs root and unshare",
)
def test_a_worker_in_a_mount_namespace_without_the_folder(tmp_path: Path, redis_url: str) -> None:
    _run_elsewhere(tmp_path, redis_url, hide=True)


def test_an_edit_during_the_sweep_changes_nothing_for_it(workdir: Path, redis_url: str, start_worker) -> None:
    sweep = _project(workdir, points=6, sleep=0.4)
    old = pack(workdir / "model").code_version
    start_worker("w1", concurrency=1)
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(sweep).execution_id
        deadline = time.monotonic() + 60
        while orch.status(sid).counts.get("running", 0) + orch.status(sid).finished == 0:
            assert time.monotonic() < deadline, "nothing started"
            time.sleep(0.05)
        (workdir / "model" / "model.py").write_text(MODEL.format(version=2))  # mid-sweep
        new = pack(workdir / "model").code_version
        assert orch.wait(sid, timeout=120).state == "completed"
        first = orch.results(sid)
        # the sweep file again, after it ended: the new code runs, and nothing of the old is reused
        again = orch.submit(sweep)
        assert again.execution_id == sid
        final = orch.wait(sid, timeout=120)
        rows = orch.results(sid)
    assert set(first["code_version"]) == {old} and set(first["metric.version"]) == {1}
    second = rows[rows["code_version"] == new]
    assert len(second) == 6 and set(second["metric.version"]) == {2}
    assert final.counts["reused"] == 0 and final.counts["completed"] == 6


def test_a_corrupted_archive_fails_its_project_and_the_rest_go_on(workdir: Path, redis_url: str) -> None:
    sweep = _project(workdir, name="good")
    bad = _project(workdir, name="bad", version=3)
    config = yaml.safe_load(sweep.read_text())
    config["projects"] += yaml.safe_load(bad.read_text())["projects"]
    sweep.write_text(yaml.safe_dump(config))
    digest = pack(workdir / "bad").digest
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(sweep).execution_id
        # the store now gives other bytes under the bad project's name (every time it is asked)
        redis.Redis.from_url(redis_url).set(f"orch:code:{digest}", pack(workdir / "good").data)
        worker = _other_host(redis_url, workdir, "host-c").wait_ready()
        try:
            final = orch.wait(sid, timeout=120)
            frame = orch.results(sid)
        finally:
            worker.stop()
    assert final.state == "completed"
    good, broken = frame[frame["project_name"] == "good"], frame[frame["project_name"] == "bad"]
    assert len(good) == 6 and set(good["status"]) == {"completed"}
    assert len(broken) == 6 and set(broken["status"]) == {"failed"}
    assert set(broken["error_class"]) == {"configuration"}
    assert broken["error_message"].str.contains("does not match its hash").all()


def test_a_closed_sweep_lets_go_of_its_archive(workdir: Path, redis_url: str, start_worker) -> None:
    sweep = _project(workdir, points=2)
    digest = pack(workdir / "model").digest
    start_worker("w1", concurrency=1)
    client = redis.Redis.from_url(redis_url)
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(sweep).execution_id
        assert client.exists(f"orch:code:{digest}")
        assert orch.wait(sid, timeout=60).state == "completed"
        deadline = time.monotonic() + 10
        while client.exists(f"orch:code:{digest}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.exists(f"orch:code:{digest}")
        assert set(orch.results(sid)["code_version"]) == {f"sha256:{digest}"}  # the rows keep its name


def _big_project(workdir: Path) -> Path:
    sweep = _project(workdir)
    (workdir / "model" / "weights.bin").write_bytes(os.urandom(3 * 2**20))
    (workdir / "model" / "notes.txt").write_bytes(b"x" * 2**20)
    return sweep


def test_a_project_over_code_max_bytes_is_refused_and_nothing_is_written(
    workdir: Path, redis_url: str
) -> None:
    sweep = _big_project(workdir)
    proc = cli(
        "submit", str(sweep), "--broker", redis_url, workdir=workdir, ORCHESTRATOR_CODE_MAX_BYTES="2000000"
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    for fragment in [
        "code_max_bytes",
        "weights.bin (3.0 MB)",
        "notes.txt (1.0 MB)",
        "exclude",
        "projects[0]",
    ]:
        assert fragment in message, message
    assert "Traceback" not in proc.stderr
    assert redis.Redis.from_url(redis_url).dbsize() == 0, "no Redis keys"
    assert not (workdir / "results").exists(), "no result files"
    # the fix the message names works: leave the data out
    config = yaml.safe_load(sweep.read_text())
    config["projects"][0]["exclude"] = ["*.bin", "notes.txt"]
    sweep.write_text(yaml.safe_dump(config))
    ok = cli("estimate", str(sweep), workdir=workdir, ORCHESTRATOR_CODE_MAX_BYTES="2000000")
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_shared_code_missing_on_the_submitting_host_is_refused(workdir: Path, redis_url: str) -> None:
    sweep = _project(workdir)
    config = yaml.safe_load(sweep.read_text())
    config["projects"][0].update(path="./elsewhere", code="shared")
    sweep.write_text(yaml.safe_dump(config))
    proc = cli("submit", str(sweep), "--broker", redis_url, workdir=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "projects[0].path" in proc.stderr and "does not exist" in " ".join(proc.stderr.split())
    assert redis.Redis.from_url(redis_url).dbsize() == 0


def test_shared_code_runs_in_place_and_is_named_by_its_content(
    workdir: Path, redis_url: str, start_worker
) -> None:
    sweep = _project(workdir, points=2)
    config = yaml.safe_load(sweep.read_text())
    config["projects"][0]["code"] = "shared"
    sweep.write_text(yaml.safe_dump(config))
    start_worker("w1", concurrency=1)
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(sweep).execution_id
        assert orch.wait(sid, timeout=60).state == "completed"
        frame = orch.results(sid)
    assert set(frame["status"]) == {"completed"}
    assert all(v.startswith(("sha:", "git:")) for v in frame["code_version"])
    assert not (workdir / ".orchestrator" / "code").exists() or not any(
        (workdir / ".orchestrator" / "code").iterdir()
    )


def test_status_and_the_api_show_each_workers_machine_and_cached_code(
    workdir: Path, redis_url: str, start_worker
) -> None:
    sweep = _project(workdir, points=2)
    digest = pack(workdir / "model").digest
    start_worker("w1", concurrency=1)
    with Orchestrator(redis_url) as orch:
        sid = orch.submit(sweep).execution_id
        assert orch.wait(sid, timeout=60).state == "completed"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the next heartbeat carries the cache
            live = orch.state.registry.live()
            if any(f"sha256:{digest}" in w.get("code", []) for w in live.values()):
                break
            time.sleep(0.2)
    (info,) = live.values()
    assert info["host"] == os.uname().nodename and f"sha256:{digest}" in info["code"]
    proc = cli("status", sid, "--broker", redis_url, workdir=workdir)
    assert proc.returncode == 0, proc.stderr
    assert digest[:12] in proc.stdout and os.uname().nodename in proc.stdout


def test_a_fetch_while_redis_is_down_is_transient(tmp_path: Path) -> None:
    """The worker's fetch: an unreachable store is a transient error (retried), never a failure."""
    from core.errors import TransientError
    from core.settings import load_settings
    from workers.app import create_app
    from workers.runner import ExperimentRunner

    settings = load_settings(broker_url="redis://127.0.0.1:1/0", state_dir=tmp_path)
    runner = ExperimentRunner(create_app(settings), settings)
    with pytest.raises(TransientError, match="could not be fetched"):
        runner.code.path("sha256:" + "0" * 64)


def test_shared_code_edited_in_place_is_imported_afresh_for_its_new_version(tmp_path: Path) -> None:
    """A worker reuses a folder's scan for a second (scanning costs more than a no-op run): a
    shared project edited within that second would run its old modules under the new code
    version. The runner drops the scan when it builds the adapter of a new version."""
    from adapters import adapt_project, loading
    from core.project import ProjectSpec

    _project(tmp_path)
    spec = ProjectSpec(name="model", path=tmp_path / "model", entry="model:run", code="shared")
    assert adapt_project(spec.path, spec).run({"x": 1})["version"] == 1
    (tmp_path / "model" / "model.py").write_text(MODEL.format(version=7))
    assert adapt_project(spec.path, spec).run({"x": 1})["version"] == 1  # the scan of a moment ago
    loading.forget(spec.path)
    assert adapt_project(spec.path, spec).run({"x": 1})["version"] == 7
