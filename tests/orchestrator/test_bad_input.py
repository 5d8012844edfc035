"""Bad input: exit code 2, a message naming the file, the field and the fix, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.conftest import FIXTURES, cli

COUNTER = FIXTURES / "projects" / "counter"
GOOD = f"""name: bad
projects:
  - name: counter
    path: {COUNTER}
    entry: counter:run
parameters:
  x: {{kind: int, start: 0, stop: 3}}
adaptive_sampling: false
"""

CASES = {
    "malformed_yaml": (GOOD.replace("parameters:", "parameters: [oops"), ["malformed YAML", "line"]),
    "unknown_key": (GOOD + "budget_limt: 3\n", ["budget_limt", "unknown key", "line 9"]),
    "wrong_type": (
        GOOD.replace("adaptive_sampling: false", "adaptive_sampling: maybe"),
        ["adaptive_sampling", "line 8", "fix the value"],
    ),
    "empty_range": (
        GOOD.replace("{kind: int, start: 0, stop: 3}", "{values: []}"),
        ["parameters.x", "at least one"],
    ),
    "constraint_filters_all": (
        GOOD + "constraints:\n  parameters: ['x > 10']\n",
        ["constraints.parameters", "filter out every point"],
    ),
    "unknown_project_path": (
        GOOD.replace(str(COUNTER), "/no/such/project"),
        ["projects[0].path", "does not exist"],
    ),
    "constraint_unknown_name": (GOOD + "constraints:\n  parameters: ['y > 1']\n", ["unknown parameter", "y"]),
    "max_experiments_zero": (
        GOOD + "max_experiments: 0\n",
        ["max_experiments", "line 9", "greater than or equal to 1"],
    ),
    "max_experiments_below_startup": (
        GOOD.replace("x: {kind: int, start: 0, stop: 3}", "x: {kind: int, start: 0, stop: 30}").replace(
            "adaptive_sampling: false", "adaptive_sampling: true\nobjectives: [y]\nmax_experiments: 6"
        ),
        ["max_experiments", "startup_points=6", "raise max_experiments above 6"],
    ),
    "unsafe_constraint": (
        GOOD + 'constraints:\n  parameters: [\'__import__("os").system("true")\']\n',
        ["constraints.parameters", "not allowed"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_sweep_file(case: str, workdir: Path, redis_url: str) -> None:
    text, expected = CASES[case]
    sweep = workdir / "sweep.yaml"
    sweep.write_text(text)
    proc = cli("run", str(sweep), "--broker", redis_url, workdir=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    assert "sweep.yaml" in message
    for fragment in expected:
        assert fragment in message, message
    assert "Traceback" not in proc.stderr
    assert redis.Redis.from_url(redis_url).dbsize() == 0, "no Redis keys"
    assert not (workdir / "results").exists(), "no result files"


def test_unreachable_broker(workdir: Path) -> None:
    sweep = workdir / "sweep.yaml"
    sweep.write_text(GOOD)
    proc = cli("run", str(sweep), "--broker", "redis://user:hunter2@127.0.0.1:1/0", workdir=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    assert "broker_url" in message and "cannot reach" in message
    assert "hunter2" not in proc.stdout + proc.stderr, "no credentials in messages"
    assert not (workdir / "results").exists()


def test_bad_broker_scheme(workdir: Path) -> None:
    sweep = workdir / "sweep.yaml"
    sweep.write_text(GOOD)
    proc = cli("run", str(sweep), "--broker", "amqp://localhost", workdir=workdir)
    assert proc.returncode == 2
    assert "broker_url" in proc.stderr and "redis://" in proc.stderr


def test_worker_rejects_unknown_queue(workdir: Path, redis_url: str) -> None:
    proc = cli("worker", "--queues", "local_cpu,gpu", "--broker", redis_url, workdir=workdir)
    assert proc.returncode == 2 and "gpu" in proc.stderr and "local_cpu" in proc.stderr
