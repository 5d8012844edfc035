"""Checks and a cost estimate before a sweep starts: bad input is refused before anything is
written, and never reaches a paid device.

An adaptive sweep's optimizer options are checked against the sweep (enough points for the
startup design; objectives that some project produces, learnt from a dry run of one point of
each local project). For every project on a managed Braket device, the circuit of its first valid point is built and
validated against the device with the sweep's largest shot count (device exists, shots in range,
circuit fits, budget not negative and not below the cheapest task). Then every experiment is
priced from the price table.
"""

from __future__ import annotations

from collections.abc import Iterator

from adapters.spec import is_managed
from orchestrator.braket.estimate import CostEstimate, estimate_cost
from orchestrator.braket.prices import load_price_table
from orchestrator.config import SweepConfiguration
from orchestrator.errors import InputError
from orchestrator.models import Experiment
from orchestrator.plan import SweepPlan
from orchestrator.settings import Settings

MAX_PRICED = 200_000  # experiments priced one by one; above it the rest is extrapolated


def preflight(config: SweepConfiguration, settings: Settings, *, source: str = "<sweep>") -> CostEstimate:
    """Validate the sweep and estimate its cost. Raises ``InputError`` (exit 2)."""
    from orchestrator.optimizer.validation import validate_adaptive_sweep

    produced = produced_metrics(config) if config.adaptive_sampling and config.objectives else None
    validate_adaptive_sweep(config, produced_metrics=produced, source=source)
    prices = load_price_table(settings.price_table)
    paid = [p for p in config.projects if is_managed(p.device)]
    budget = config.budget_limit if config.budget_limit is not None else settings.default_budget
    if paid:
        if not settings.braket_s3_bucket:
            raise InputError(
                "projects on managed Braket devices need an S3 bucket for results; set "
                "ORCHESTRATOR_BRAKET_S3_BUCKET or braket_s3_bucket in orchestrator.yaml",
                source=source,
                field="projects[].device",
            )
        from orchestrator.braket.checks import check_paid_sweep

        check_paid_sweep(
            config.space(),
            [(i, p) for i, p in enumerate(config.projects) if is_managed(p.device)],
            bucket=str(settings.braket_s3_bucket),
            prefix=settings.braket_s3_prefix,
            budget=budget,
            prices=prices,
            source=source,
        )
    if not paid:  # nothing to price: skip enumerating the sweep
        return CostEstimate(currency=prices.currency, price_table=prices.version)
    plan = SweepPlan(config, {p.name: "" for p in config.projects})
    experiments = list(_experiments(plan, MAX_PRICED))
    estimate = estimate_cost(experiments, prices=prices, shots_for=lambda e: _shots(plan, e))
    if plan.space.size * plan.stride > MAX_PRICED and experiments:
        scale = plan.space.size * plan.stride / len(experiments)
        for line in estimate.lines.values():
            for attr in ("tasks", "shots"):
                setattr(line, attr, int(getattr(line, attr) * scale))
            for attr in ("billed_seconds", "task_fees", "shot_fees", "time_fees"):
                setattr(line, attr, getattr(line, attr) * scale)
        estimate.notes.append(f"priced the first {len(experiments)} experiments and extrapolated")
    return estimate


def _experiments(plan: SweepPlan, limit: int) -> Iterator[Experiment]:
    count = 0
    for points in plan.space.iter_valid():
        for index in plan.experiment_indices(points).tolist():
            _, _, spec = plan.decompose(index)
            yield Experiment(
                sweep_id=plan.sweep_id,
                experiment_id=str(index),
                index=index,
                project=spec.name,
                parameters={},
                resource=spec.resource,
                device=spec.device if is_managed(spec.device) else None,
            )
            count += 1
            if count >= limit:
                return


def _shots(plan: SweepPlan, experiment: Experiment) -> int:
    point, _, spec = plan.decompose(experiment.index)
    params = {**spec.fixed, **plan.space.point(point)}
    options = spec.circuit
    name = options.shots_param if options else "shots"
    return int(params.get(name, options.default_shots if options else 1000))


def produced_metrics(config: SweepConfiguration) -> set[str] | None:
    """Metric names the sweep's projects produce: declared ones, else a dry run of the first point.

    None when some project's metrics cannot be known without spending money (managed devices).
    """
    from adapters import adapt_project

    space = config.space()
    first = next((int(c[0]) for c in space.iter_valid() if len(c)), 0)
    known: set[str] = set()
    for spec in config.projects:
        if spec.metrics:
            known |= set(spec.metrics)
            continue
        if is_managed(spec.device):
            return None
        result = adapt_project(spec.path, spec).execute_with_parameters(space.point(first))
        if result.status != "completed":
            return None  # a broken project fails on its own rows, with its own message
        known |= set(result.metrics)
    return known
