"""Run a project's process with a deadline, killing its whole process group when it overruns."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: seconds between SIGTERM and SIGKILL when a run overruns
KILL_GRACE = 2.0


@dataclass
class ProcessOutcome:
    """What a finished (or killed) process left behind."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


def run_process(
    argv: list[str] | str,
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: str = "",
    timeout: float | None = None,
    shell: bool = False,
) -> ProcessOutcome:
    """Run ``argv`` to completion or until ``timeout`` seconds, then kill its process group.

    Output goes to temporary files rather than pipes: a grandchild that keeps a pipe open
    after the kill cannot hang us, and a chatty project cannot fill a pipe buffer.
    """
    with (
        tempfile.TemporaryFile("w+b") as out,
        tempfile.TemporaryFile("w+b") as err,
        tempfile.TemporaryFile("w+b") as inp,
    ):
        inp.write(stdin.encode())
        inp.seek(0)
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=inp, stdout=out, stderr=err, shell=shell, start_new_session=True
        )  # its own group, so a kill reaches its children
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
        except BaseException:
            _kill_group(proc)  # the worker is being stopped: take the project down with it
            raise
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return ProcessOutcome(
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            seconds,
            timed_out,
        )


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            if sig == signal.SIGTERM:
                # the leader is gone, but children may linger in the group
                os.killpg(proc.pid, signal.SIGKILL)
            break
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    if proc.returncode is None:
        proc.wait()
