"""Process hygiene of the command line: no orphans, no needless Redis, messages not tracebacks."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from click.testing import CliRunner

from orchestrator.cli import main
from tests.conftest import child_env, cli


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sigterm_to_flower_leaves_no_process(workdir: Path, redis_url: str) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "flower", "--broker", redis_url, "--port", str(port)],
        env=child_env(workdir, ORCHESTRATOR_FLOWER_AUTH="admin:secret"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so that the test can find (and clean up) every descendant
    )
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/", auth=("admin", "secret"), timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            pytest.fail("flower did not answer")
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        _, alive = psutil.wait_procs(tree, timeout=10)
        assert not alive, f"left running after SIGTERM: {[p.cmdline() for p in alive]}"
    finally:
        for process in tree:
            if process.is_running():
                process.kill()
        if proc.poll() is None:
            proc.kill()


def test_status_with_nothing_run_starts_nothing(workdir: Path) -> None:
    before = {p.pid for p in psutil.process_iter() if p.name() == "redis-server"}
    listed = cli("status", workdir=workdir)
    assert listed.returncode == 0, listed.stderr
    assert "no sweeps" in listed.stdout
    one = cli("status", "quickstart-0123456789", workdir=workdir)
    assert one.returncode == 2 and "quickstart-0123456789" in one.stderr
    assert not (workdir / ".orchestrator").exists(), "no state folder created"
    started = {p.pid for p in psutil.process_iter() if p.name() == "redis-server"} - before
    assert not [p for p in started if psutil.pid_exists(p)], "no Redis started"


def test_celery_command_without_broker_says_so(workdir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker"],
        cwd=workdir,
        env=child_env(workdir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ORCHESTRATOR_BROKER_URL" in proc.stderr and "needs a broker" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["worker", "beat", "flower"])
def test_service_help_says_broker_is_required(command: str) -> None:
    help_text = " ".join(CliRunner().invoke(main, [command, "--help"]).output.split())
    assert "embedded" not in help_text
    assert "--broker" in help_text and "required" in help_text
    refused = CliRunner().invoke(main, [command], env={"ORCHESTRATOR_FLOWER_AUTH": "a:b"})
    assert refused.exit_code == 2 and "--broker" in refused.output
