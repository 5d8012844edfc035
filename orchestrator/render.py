"""What the command line shows: the plan, the live progress bar, status and best points."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=False)


def print_plan(config: Any) -> None:
    space = config.space()
    planned = space.size * config.repeats * len(config.projects)
    table = Table("sweep", "projects", "points", "repeats", "experiments (before constraints)")
    table.add_row(
        config.sweep_id,
        ", ".join(p.name for p in config.projects),
        str(space.size),
        str(config.repeats),
        str(planned),
    )
    console.print(table)


def follow(orch: Any, execution_id: str, resumed: bool = False) -> None:
    """Coordinate in the foreground with a live progress bar, then print the summary."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task(execution_id, total=orch.status(execution_id).planned, detail="")
    holder: dict[str, Any] = {}

    def tick() -> None:
        st = orch.status(execution_id)
        holder["status"] = st
        c = st.counts
        eta = f"ETA {st.eta_seconds:.0f}s" if st.eta_seconds is not None else ""
        detail = (
            f"done {c['completed'] + c['reused']} failed {c['failed']} running {c['running']} "
            f"queued {c['queued']} {eta} [{st.state}]"
        )
        progress.update(
            task, total=st.total if st.total is not None else st.planned, completed=st.finished, detail=detail
        )

    console.print(
        f"{'resuming' if resumed else 'running'} sweep [bold]{execution_id}[/] "
        f"({'embedded' if orch.embedded else redact_url(orch.settings.broker_url)})"
    )

    def finished() -> bool:
        st = orch.status(execution_id)
        if not st.done and any(st.counts[k] for k in ("pending", "queued", "running")):
            orch.start_workers(execution_id)  # once, and only if something must run
        # a paused sweep (a budget reached, a user's `pause`) waits for a person: stop following
        # once what was running has landed
        return st.done or (st.state == "paused" and st.counts["running"] == 0)

    try:
        with progress:
            orch.coordinator.run_until(finished, on_tick=tick)
    except KeyboardInterrupt:
        console.print(f"\ninterrupted; continue with: orchestrator resume {execution_id}")
        raise SystemExit(130) from None
    orch.stop_workers()  # their teardown takes seconds: overlap it with the report and the summary
    if orch.status(execution_id).done:  # cancelled and timed-out sweeps have their report too
        console.print("writing the report...")
        orch.coordinator.reports.wait(execution_id)  # the report is part of the run, never lost on exit
    final = orch.status(execution_id)
    print_status(orch, final)
    if final.state == "paused":
        console.print(
            f"[bold]sweep paused[/]: {final.paused_reason or 'paused'}. Continue it with: orchestrator "
            f"resume {execution_id} (after a budget pause, raise budget_limit in the sweep file and run "
            f"it again instead: its completed experiments are reused)",
            highlight=False,
        )
        raise SystemExit(1)
    if final.state != "completed" or (
        final.counts["failed"] and not (final.counts["completed"] + final.counts["reused"])
    ):
        raise SystemExit(1)


def _print_workers(live: dict[str, dict[str, Any]]) -> None:
    """The live workers: which machine, which queues, and the code versions each has cached."""
    if not live:
        return
    table = Table("worker", "host", "queues", "processes", "code cached", title="workers")
    for name, info in sorted(live.items()):
        code = ", ".join(v.removeprefix("sha256:")[:12] for v in info.get("code", [])) or "-"
        table.add_row(name, info.get("host", "?"), ",".join(info["queues"]), str(info["concurrency"]), code)
    console.print(table)


def _print_optimizer(info: dict[str, Any]) -> None:
    """What the optimizer believes and what its last refit changed."""
    if not info:
        return
    coverage = info.get("coverage") or {}
    console.print(
        f"[bold]optimizer[/] {info.get('phase', '?')}, confidence {info.get('confidence_level', 0):.2f}, "
        f"space-filling share {coverage.get('share', 0):.0%} (target {coverage.get('target_share', 0):.0%})"
    )
    if info.get("incumbent"):
        inc = info["incumbent"]
        console.print(f"  best so far: {inc.get('value')} at {inc.get('parameters')}", highlight=False)
    for region in (info.get("promising_regions") or [])[:3]:
        bounds = ", ".join(f"{k} in [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in region.get("bounds", {}).items())
        fixed = ", ".join(f"{k}={v}" for k, v in (region.get("fixed") or {}).items())
        console.print(f"  promising: {bounds}{'; ' + fixed if fixed else ''}", highlight=False)
    if info.get("summary"):
        console.print(f"  last refit: {info['summary']}", highlight=False)


def _print_early_stopping(info: dict[str, Any]) -> None:
    """How many runs each rule stopped, where, and what that saved against running them all."""
    if not info:
        return
    parts = []
    for rule, r in info.get("rules", {}).items():
        at = (
            f" at step {r['step_median']:g} (min {r['step_min']}, max {r['step_max']})"
            if "step_median" in r
            else ""
        )
        parts.append(f"{rule} stopped {r['stopped']}{at}")
    saved = []
    if info.get("steps_saved"):
        share = info.get("steps_saved_share")
        saved.append(
            f"{info['steps_saved']} steps saved"
            + (f" ({share:.0%} of running all to step {info['full_steps']})" if share is not None else "")
        )
    if info.get("shots_saved"):
        saved.append(f"{info['shots_saved']:.0f} shots saved")
    if info.get("cap_refused"):  # max_stopped_share binds: the rule would have stopped these too
        saved.append(f"cap refused {info['cap_refused']} stops (max_stopped_share)")
    console.print(f"[bold]early stopping[/] {'; '.join(parts + saved)}", highlight=False)


def _print_best(orch: Any, execution_id: str, frame: Any) -> None:
    """The best points of each objective, from the results themselves."""
    from analysis import best_points

    if frame.empty:
        return
    raw = orch.state.config_json(execution_id)
    if not raw:
        return
    from core.config import SweepConfiguration

    for objective in SweepConfiguration.model_validate_json(raw).objectives:
        best = best_points(frame, objective.metric, objective.goal, n=3)
        if best.empty or f"{objective.metric}_mean" not in best:
            continue
        best = best.dropna(axis=1, how="all").rename(columns=lambda c: c.removeprefix("param."))
        best = best.drop(columns=[c for c in ("project_name",) if best[c].nunique() == 1])
        table = Table(*best.columns, title=f"best by {objective.metric} ({objective.goal})")
        for row in best.itertuples(index=False):
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
        console.print(table)


def redact_url(url: str | None) -> str:
    from orchestrator.api import redact

    return redact(url or "")


def print_status(orch: Any, st: Any) -> None:
    table = Table(title=f"sweep {st.execution_id}: {st.state}", show_header=False)
    c = st.counts
    total = st.total if st.total is not None else f"≤{st.planned}"
    for label, value in [
        ("experiments", total),
        ("completed", c["completed"]),
        ("reused", c["reused"]),
        ("failed", c["failed"]),
        ("early stopped", c["early_stopped"]),
        ("cancelled", c["cancelled"]),
        ("running", c["running"]),
        ("queued", c["queued"]),
        ("pending", c["pending"]),
        ("cost", f"${st.cost:.4f}" + (f" of ${st.budget:.2f}" if st.budget else "")),
        ("elapsed", f"{st.elapsed_seconds:.1f} s"),
        ("ETA", f"{st.eta_seconds:.0f} s" if st.eta_seconds is not None else "-"),
        ("workers", st.workers),
        ("results", st.results_path),
        ("report", st.report_path or "-"),
    ]:
        table.add_row(label, str(value))
    console.print(table)
    _print_workers(orch.state.registry.live())
    _print_optimizer(st.optimizer)
    _print_cross_project(st.cross_project)
    _print_early_stopping(st.early_stopping)
    alerts = [e for e in st.events if e["level"] == "alert"]
    for event in alerts[:5]:
        console.print(f"[yellow]alert:[/] {event['message']}")
    frame = orch.store.load(st.execution_id)  # the rows so far, none if the results are elsewhere
    _print_best(orch, st.execution_id, frame)
    _print_validation(frame, st.validation)
    failed = frame[frame["status"] == "failed"] if not frame.empty else frame
    if len(failed):
        console.print(
            f"[red]{len(failed)} failed[/], e.g. {failed.iloc[0]['error_class']}: "
            f"{str(failed.iloc[0]['error_message'])[:300]}",
            highlight=False,
        )


def _print_cross_project(comparison: dict[str, Any]) -> None:
    """The cross-project comparison stored when the sweep completed, with BH-corrected p-values."""
    if not comparison.get("pairs"):
        return
    table = Table(
        "metric", "a", "b", "points", "mean a - b", "test", "p", "p (BH)", "effect", title="cross-project"
    )
    for pair in comparison["pairs"]:
        table.add_row(
            str(pair.get("metric")),
            str(pair.get("a")),
            str(pair.get("b")),
            str(pair.get("shared", "")),
            _num(pair.get("mean_diff")),
            str(pair.get("test", "")),
            _num(pair.get("p_value")),
            _num(pair.get("p_adjusted")) + (" *" if pair.get("significant") else ""),
            f"{_num(pair.get('effect_size'))} ({pair.get('effect_size_kind', '')})",
        )
    console.print(table)
    points = comparison.get("points") or []
    if points:
        significant = sum(bool(p.get("significant")) for p in points)
        console.print(f"  per shared point: {significant} of {len(points)} significant after BH correction")


def _print_validation(frame: Any, stored: dict[str, Any]) -> None:
    """Violations: per run as they land (the rows' ``validation`` column), per point once analysed."""
    runs = frame["validation"].dropna().astype(str) if "validation" in frame else []
    bad = [v for v in runs if v.startswith("violation")]
    warned = sum(v.startswith("warn") for v in runs)
    counts = stored.get("counts") or {}
    if not (bad or warned or counts.get("violation") or counts.get("warn")):
        return
    console.print(
        f"[bold]validation[/] runs: {len(bad)} violation(s), {warned} warning(s)"
        + (f"; analysis: {counts}" if counts else ""),
        highlight=False,
    )
    for text in bad[:3]:
        console.print(f"  [red]{text}[/]", highlight=False)
    for check in [v for v in stored.get("violations", []) if "z" in v][:3]:
        console.print(
            f"  [red]violation[/] {check.get('metric')} at {check.get('parameters')}: {check.get('reason')}",
            highlight=False,
        )


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else "-"
