"""Pending work in constant memory: a sweep's Redis state is bounded by its window and its
scored candidates, not by its size, and a completed million-point sweep run again reuses every
result without running one (real Redis, a real coordinator, no worker)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import redis

from core.config import validate_sweep
from core.plan import SweepPlan
from core.results import ANALYSIS_FILE, REPORT_FILE, ResultStore
from core.settings import load_settings
from orchestrator.api import Orchestrator
from orchestrator.coordinator import Coordinator
from orchestrator.dispatch import Dispatcher
from orchestrator.optimizer.service import refit_sweep
from orchestrator.scheduler import Scheduler
from orchestrator.store import SweepState, connect
from tests.conftest import child_env, write_sweep
from workers.app import create_app

NOOP = str(Path(__file__).resolve().parents[2] / "benchmarks" / "projects" / "noop")
Q = "local_cpu"


def _config(side: int, adaptive: bool) -> dict:
    axis = {"kind": "int", "start": 0, "stop": side - 1}
    return {
        "name": f"scale-{side}",
        "adaptive_sampling": adaptive,
        "projects": [{"name": "noop", "path": NOOP, "entry": "noop:run"}],
        "parameters": {"x": axis, "y": axis},
        **({"objectives": [{"metric": "y", "goal": "maximize"}], "seed": 5} if adaptive else {}),
    }


def sweep_memory(client: redis.Redis, sweep_id: str) -> int:
    """Bytes of every key of the sweep (``MEMORY USAGE``, exact)."""
    return sum(
        int(client.memory_usage(key, samples=0) or 0) for key in client.scan_iter(f"orch:sweep:{sweep_id}:*")
    )


def _run_steps(coordinator: Coordinator, n: int) -> None:
    for _ in range(n):
        coordinator.step(block_ms=1)


def _sweep(redis_url: str, tmp_path: Path, side: int, adaptive: bool) -> tuple[SweepState, str, Coordinator]:
    """A registered sweep after a coordinator's first steps (its first window published, no worker);
    an adaptive one also after 12 results and a refit, whose picks the next steps materialise."""
    settings = load_settings(broker_url=redis_url, results_dir=tmp_path / "results", publish_window=16)
    state, store = SweepState(connect(redis_url)), ResultStore(settings.results_dir)
    config = validate_sweep(_config(side, adaptive))
    sid = Scheduler(state, store, settings).schedule_sweep(config).execution_id
    coordinator = Coordinator(state, store, Dispatcher(create_app(settings)), settings, optimize_inline=False)
    _run_steps(coordinator, 4)
    if adaptive:
        plan = SweepPlan(config, json.loads(state.meta(sid)["code_versions"]))
        taken = state.pending.take(sid, Q, 12)
        for member, _ in taken:
            exp = plan.experiment(int(member))
            row = {"index": exp.index, "experiment_id": exp.experiment_id, "status": "completed"}
            row |= {"parameters": exp.parameters, "metrics": {"y": float(exp.parameters["x"])}}
            state.record(sid, exp.index, exp.experiment_id, row, status="completed", final=True)
        assert refit_sweep(state, sid, pool_size=20_000) is not None
        _run_steps(coordinator, 4)
    return state, sid, coordinator


@pytest.mark.parametrize("adaptive", [False, True], ids=["grid", "adaptive"])
def test_a_million_point_sweep_holds_no_more_than_twice_the_redis_memory_of_ten_thousand(
    adaptive: bool, redis_url: str, tmp_path: Path
) -> None:
    client = connect(redis_url)
    small_state, small, _ = _sweep(redis_url, tmp_path / "small", 100, adaptive)
    big_state, big, coordinator = _sweep(redis_url, tmp_path / "big", 1000, adaptive)
    small_bytes, big_bytes = sweep_memory(client, small), sweep_memory(client, big)
    print(f"sweep keys: {small_bytes:,} bytes for 10k points, {big_bytes:,} for 1M")
    assert big_bytes <= 2 * small_bytes, (small_bytes, big_bytes)
    assert big_bytes < 4 * 2**20, f"{big_bytes / 2**20:.1f} MB for a million points"

    pending = sum(big_state.pending.sizes(big).values())
    assert 0 < pending <= 10_000, "only the next few thousand experiments are materialised"
    status = Scheduler(big_state, coordinator.store, coordinator.settings).get_execution_status(big)
    assert status.total == 1_000_000, "without constraints the total is known from the start"
    counts = status.counts
    assert counts["pending"] == 1_000_000 - counts["completed"] - counts["queued"] - counts["running"]
    if adaptive:
        picked = client.scard(f"orch:sweep:{big}:picked")
        assert picked > 0, "the refit's best picks from its pool were materialised ahead of the cursor"
        best = json.loads(big_state.meta(big)["optimizer"])
        assert best["phase"] in ("model", "startup")


def test_a_rerun_of_a_completed_million_point_sweep_reuses_everything_and_runs_nothing(
    redis_url: str, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    config = _config(1000, adaptive=False)
    with Orchestrator(redis_url, coordinate=False, results_dir=results, state_dir=tmp_path / "state") as orch:
        sid = orch.submit(config).execution_id  # registered, and its sweep.json written
    # What a completed run of it left: a million rows, and its report (a million runs of even a
    # no-op project take too long for a test; their rows are what a rerun looks at).
    plan = SweepPlan(
        validate_sweep(config), json.loads(SweepState(connect(redis_url)).meta(sid)["code_versions"])
    )
    store = ResultStore(results)
    for lo in range(0, plan.space.size, 250_000):
        store.write_rows(
            sid,
            [
                {"sweep_id": sid, "experiment_id": exp_id, "project_name": "noop", "index": index}
                | {"repeat": 0, "status": "completed", "attempt": 1, "metrics": '{"y": 0}'}
                for index, exp_id in plan.experiment_ids(np.arange(lo, lo + 250_000))
            ],
            batch=f"done-{lo}",
        )
    store.write_text(sid, REPORT_FILE, "<html></html>")
    store.write_text(sid, ANALYSIS_FILE, "{}")

    client = connect(redis_url)
    client.flushdb()  # run again later, on a fresh broker: only the results remember it
    with Orchestrator(redis_url, results_dir=results, state_dir=tmp_path / "state") as orch:
        assert orch.submit(config).execution_id == sid
        status = orch.wait(sid, timeout=110)
    assert status.state == "completed"
    assert status.counts["reused"] == 1_000_000 and status.counts["completed"] == 0
    assert not client.exists("local_cpu"), "not one experiment message was published"
    assert int(client.hget(f"orch:sweep:{sid}:meta", "n_completed") or 0) == 0


def test_a_pick_ahead_of_the_cursor_is_reused_when_it_completed_elsewhere(
    redis_url: str, tmp_path: Path
) -> None:
    state, sid, coordinator = _sweep(redis_url, tmp_path, 1000, adaptive=False)
    plan = SweepPlan(validate_sweep(_config(1000, False)), json.loads(state.meta(sid)["code_versions"]))
    done_elsewhere, fresh = 900_000, 900_001  # far past the cursor: never materialised
    exp = plan.experiment(done_elsewhere)
    coordinator.store.write_rows(
        "earlier",
        [
            {"sweep_id": "earlier", "experiment_id": exp.experiment_id, "project_name": "noop"}
            | {"index": 7, "repeat": 0, "status": "completed", "attempt": 1, "metrics": '{"y": 9}'}
        ],
    )
    coordinator.sweeps[sid].filler._done = None  # noqa: SLF001 - the dataset changed: read it again
    state.optimizer().offer_picks(sid, {done_elsewhere: 0.9, fresh: 0.8})
    _run_steps(coordinator, 2)
    client = connect(redis_url)
    assert client.hget(f"orch:sweep:{sid}:terminal", done_elsewhere) == "reused"
    assert client.zscore(f"orch:sweep:{sid}:pending:{Q}", str(fresh)) == 0.8
    assert client.zscore(f"orch:sweep:{sid}:pending:{Q}", str(done_elsewhere)) is None
    copied = coordinator.store.load(sid)
    assert copied.loc[copied["experiment_id"] == exp.experiment_id, "index"].tolist() == [done_elsewhere]


def test_a_cancelled_constrained_sweep_counts_exactly_what_never_started(
    redis_url: str, tmp_path: Path
) -> None:
    """Constraints are only evaluated as the cursor passes: the total stays an upper bound until
    then, and a cancel counts the valid points the cursor never reached, once."""
    config = _config(1000, adaptive=False) | {"constraints": {"parameters": ["x <= y"]}}
    settings = load_settings(broker_url=redis_url, results_dir=tmp_path / "results", publish_window=16)
    state, store = SweepState(connect(redis_url)), ResultStore(settings.results_dir)
    scheduler = Scheduler(state, store, settings)
    sid = scheduler.schedule_sweep(validate_sweep(config)).execution_id
    coordinator = Coordinator(state, store, Dispatcher(create_app(settings)), settings, optimize_inline=False)
    _run_steps(coordinator, 3)
    status = scheduler.get_execution_status(sid)
    assert status.total is None and status.planned == 1_000_000, "an upper bound until the walk is done"
    assert scheduler.cancel_execution(sid)
    for _ in range(20):
        coordinator.step(block_ms=1)
        if state.state(sid) == "cancelled":
            break
    assert int(state.meta(sid)["n_cancelled"]) == 1000 * 1001 // 2, "every valid point, none twice"


def test_a_sweep_without_braket_devices_is_validated_without_the_braket_sdk(workdir: Path) -> None:
    # importing the SDK takes ~2 s: it made a million-point sweep's first publish 1.4 s, not 0.08
    sweep = write_sweep(workdir, points=10)
    code = (
        "import sys\n"
        "from core.settings import load_settings\n"
        "from orchestrator.validation import validate\n"
        f"validate({str(sweep)!r}, load_settings())\n"
        "print(sorted(m for m in sys.modules if m == 'braket' or m.startswith('braket.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=child_env(workdir), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", "the Braket SDK was imported for a sweep that uses no Braket device"
