"""The one validation pipeline: every way in (``run``, ``submit``, ``check``, ``estimate``, the
Python API, later a REST API) calls :func:`validate`, so bad input gets the same answer everywhere.

The stages run in a fixed order, and each raises :class:`~core.errors.InputError` (file,
field path, fix; exit code 2 from the CLI, HTTP 422 from a REST API via ``to_dict()``):

1. **load**: a file (UTF-8 YAML, no repeated keys) or a dict, typed by the config models;
2. **resolve**: project paths against the sweep file's folder, project defaults layered in;
3. **projects**: each adapter kind's static check, which inspects the entry and never runs it:
   the parameters must bind to its signature, a command template may only name parameters and
   documented placeholders;
4. **space**: sizes, constraints evaluable, enough points for the adaptive start;
5. **devices and cost**: managed Braket devices accept the circuits (a circuit is *built*, not
   run), the budget covers a task, and every experiment is priced;
6. **code**: each project folder is packed into the archive its workers will run, within
   ``code_max_bytes`` (:mod:`orchestrator.code`).

Nothing is written to Redis or to the results folder before all six have passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import SweepConfiguration, load_sweep, validate_sweep
from core.errors import ExperimentError, InputError
from core.models import Experiment
from core.plan import SweepPlan
from core.project import AUTO, ProjectSpec, is_managed
from core.settings import Settings
from orchestrator.braket import rungs
from orchestrator.braket.estimate import CostEstimate, estimate_cost
from orchestrator.braket.prices import load_price_table
from orchestrator.code import SweepCode, pack_projects

SweepInput = SweepConfiguration | str | Path | dict[str, Any]
MAX_PRICED = 200_000  # experiments priced one by one; above it the rest is extrapolated


@dataclass(frozen=True)
class ValidatedSweep:
    """A sweep that passed every stage, with its cost estimate: safe to schedule."""

    config: SweepConfiguration
    estimate: CostEstimate
    source: str
    code: SweepCode


def validate(
    sweep: SweepInput | ValidatedSweep, settings: Settings, *, source: str | None = None
) -> ValidatedSweep:
    """Run the whole pipeline on ``sweep`` (a file, a dict or a typed configuration).

    Raises:
        InputError: the first problem found, naming the file, the field and the fix.
    """
    if isinstance(sweep, ValidatedSweep):
        return sweep
    config, source = load(sweep, source)
    check_projects(config, source)
    check_space(config, source)
    config, estimate = check_devices_and_cost(config, settings, source)
    return ValidatedSweep(config, estimate, source, pack_projects(config, settings, source))


# -- 1-2: load and resolve ---------------------------------------------------------------------------


def load(sweep: SweepInput, source: str | None = None) -> tuple[SweepConfiguration, str]:
    """The typed sweep and the name its errors cite (stages 1 and 2; see ``core.config``)."""
    if isinstance(sweep, SweepConfiguration):
        return sweep, source or "<sweep>"
    if isinstance(sweep, dict):
        return validate_sweep(sweep, source=source or "<sweep>"), source or "<sweep>"
    return load_sweep(sweep), source or str(sweep)


# -- 3: projects -------------------------------------------------------------------------------------


def check_projects(config: SweepConfiguration, source: str) -> None:
    """Each project's entry exists and accepts the sweep's parameters; no project code runs.

    What "accepts" means is the adapter kind's own static check
    (:meth:`~adapters.base.ProjectAdapter.check_statically`).
    """
    for i, spec in enumerate(config.projects):
        prefix = f"projects[{i}]"
        try:
            _check_project(spec, spec.argument_names(list(config.parameters)))
        except InputError as exc:  # its field is the project's own: give it the project's place
            field = f"{prefix}.{exc.field}" if exc.field else prefix
            raise InputError(exc.message, source=source, field=field, fix=exc.fix) from None
        except ExperimentError as exc:  # the adapters' own explanation, with its fix
            raise InputError(str(exc), source=source, field=_field_of(exc, prefix)) from None


def _field_of(exc: Exception, prefix: str) -> str:
    text = str(exc)
    for hint, field in (
        ("class.method", "class.method"),
        ("config_arg", "config_arg"),
        ("circuit.build", "circuit.build"),
        ("'python'", "python"),
        ("'requirements'", "requirements"),
        ("'device'", "device"),
    ):
        if hint in text:
            return f"{prefix}.{field}"
    return f"{prefix}.entry"


def _check_project(spec: ProjectSpec, parameters: list[str]) -> None:
    from adapters import adapt_project

    if is_managed(spec.device) and spec.resource == "local_cpu":
        raise InputError(
            f"device {spec.device} is a managed Braket device, which local_cpu workers cannot reach",
            field="resource",
            fix="set resource: braket_sim (managed simulators) or braket_qpu (QPUs)",
        )
    # a managed device's circuits are built to check them, never run
    adapter = adapt_project(spec.path, spec, device_runner=_never_run if is_managed(spec.device) else None)
    adapter.check_statically(parameters)  # an unusable spec's adapter raises its reason here


def _never_run(program: Any, shots: int, device: str) -> Any:
    raise AssertionError("validation builds circuits, it never runs them")


# -- 4: space ----------------------------------------------------------------------------------------


def check_space(config: SweepConfiguration, source: str) -> None:
    """What the optimizer needs: enough valid points, objectives some project declares.

    Sizes and constraints were checked when loading (``core.config``). Objective names
    are checked only against declared ``metrics``: learning them would mean running a project.
    """
    from orchestrator.optimizer.checks import check_adaptive_sweep

    check_adaptive_sweep(config, produced_metrics=declared_metrics(config), source=source)
    check_expectations(config, source)


def check_expectations(config: SweepConfiguration, source: str) -> None:
    """The ``validation:`` section names metrics the projects produce and, in its theories, only
    parameters (metrics are checked when every project declares its own)."""
    for field, problem in config.theory_errors():
        what, _, fix = problem.partition("; ")
        raise InputError(what, source=source, field=field, fix=fix)
    known = produced_metrics(config)
    for metric in config.validation:
        if known is not None and metric not in known:
            raise InputError(
                f"unknown metric '{metric}': the projects produce {sorted(known)}",
                source=source,
                field=f"validation.{metric}",
                fix="use one of those names, or declare the metric under the project's 'metrics'",
            )


def produced_metrics(config: SweepConfiguration) -> set[str] | None:
    """The declared metrics and what the projects' ``standardize`` declarations add to them."""
    known = declared_metrics(config)
    if known is None:
        return None
    for spec in config.projects:
        std = spec.standardize
        known |= set(std.fidelity) | set(std.probabilities)
        known |= {f"{p}_ci_{side}" for p in std.probabilities for side in ("low", "high")}
        known |= {f"{m}_rel_improvement" for m in std.baselines}
        if std.cost is not None:
            known |= {"cost_per_shot", "cost_per_second"}
    return known


def declared_metrics(config: SweepConfiguration) -> set[str] | None:
    """The metric names every project declares, or ``None`` when some project's are known only by running it."""
    known: set[str] = set()
    for spec in config.projects:
        if not spec.metrics:
            return None
        known |= set(spec.metrics)
    return known


# -- 5: devices and cost -----------------------------------------------------------------------------


def check_devices_and_cost(
    config: SweepConfiguration, settings: Settings, source: str
) -> tuple[SweepConfiguration, CostEstimate]:
    """Read the calibration ``noise: device`` rungs simulate, validate paid devices against the
    sweep's circuits, choose ``device: auto``'s devices, then price every experiment. Returns the
    sweep with those calibrations and choices in it, and its estimate."""
    from orchestrator.braket.calibration import calibrate

    config = calibrate(config, source)  # noise: device rungs: the QPU's calibration, stored with the sweep
    prices = load_price_table(settings.price_table)
    rungs.check_rising(config, prices, source)
    paid = [
        i for i, p in enumerate(config.projects) if is_managed(p.device) or p.device == AUTO or p.fidelities
    ]
    if not paid:  # nothing to price: skip enumerating the sweep
        return config, CostEstimate(currency=prices.currency, price_table=prices.version)
    paying = [i for i in paid if config.projects[i].may_pay]
    if paying and not settings.braket_s3_bucket:
        raise InputError(
            "projects on managed Braket devices need an S3 bucket for results",
            source=source,
            field=f"projects[{paying[0]}].device",
            fix="set ORCHESTRATOR_BRAKET_S3_BUCKET or braket_s3_bucket in orchestrator.yaml",
        )
    from orchestrator.braket.checks import check_paid_sweep, check_results_bucket, with_choices

    options: dict[str, Any] = {
        "prefix": settings.braket_s3_prefix,
        "budget": settings.budget_for(config),
        "prices": prices,
        "source": source,
        "max_seconds": settings.preflight_seconds,
        "refinement": config.adaptive_sampling and config.optimizer.refinement,
    }
    plain = [(i, config.projects[i]) for i in paid if not config.projects[i].fidelities]
    bucket = str(settings.braket_s3_bucket) if paying else None
    preflight = check_paid_sweep(config.space(), plain, bucket=bucket, **options)
    if bucket and not plain:
        check_results_bucket(bucket, settings.braket_s3_prefix, source=source)
    for i, k, on_rung in rungs.rung_specs(config):  # each managed rung: its circuits, shots, budget
        try:
            check_paid_sweep(config.space(), [(i, on_rung)], bucket=None, **options)
        except InputError as exc:
            raise rungs.at_rung(exc, i, k) from None
    config = with_choices(config, preflight)
    estimate = _estimate(config, prices)
    preflight.explain(config, estimate, prices)
    return config, estimate


def _estimate(config: SweepConfiguration, prices: Any) -> CostEstimate:
    plan = SweepPlan(config, {p.name: "" for p in config.projects})
    experiments = list(_experiments(plan, MAX_PRICED))
    experiments += rungs.promotions(plan, experiments)  # a ladder's higher rungs, at most

    def shots_for(exp: Experiment) -> int:
        return _shots(plan, exp)

    estimate = estimate_cost(experiments, prices=prices, shots_for=shots_for)
    estimate.rungs = rungs.rung_costs(plan, experiments, prices, shots_for)
    if estimate.rungs:
        estimate.notes.append(
            "a fidelity ladder is priced at its most: every point on its first rung, and max_share "
            "of them on each higher rung"
        )
    priced = sum(1 for e in experiments if not e.fidelity)
    if plan.space.size * plan.stride > MAX_PRICED and priced:
        scale = plan.space.size * plan.stride / priced
        for line in estimate.lines.values():
            for attr in ("tasks", "shots"):
                setattr(line, attr, int(getattr(line, attr) * scale))
            for attr in ("billed_seconds", "task_fees", "shot_fees", "time_fees"):
                setattr(line, attr, getattr(line, attr) * scale)
        for row in estimate.rungs:
            row.tasks, row.cost = int(row.tasks * scale), row.cost * scale
        estimate.notes.append(f"priced the first {priced} experiments and extrapolated")
    return estimate


def _experiments(plan: SweepPlan, limit: int) -> Iterator[Experiment]:
    count = 0
    for points in plan.space.iter_valid():
        for index in plan.experiment_indices(points).tolist():
            point, _, spec = plan.decompose(index)
            ladder = bool(spec.fidelities)  # a ladder's points, on its first rung
            device = (
                spec.device_for(plan.space.point(point)) if spec.device == AUTO or ladder else spec.device
            )
            yield Experiment(
                sweep_id=plan.sweep_id,
                experiment_id=str(index),
                index=index,
                project=spec.name,
                parameters=plan.space.point(point) if ladder else {},
                resource=spec.resource,
                device=device if is_managed(device) or spec.device == AUTO or ladder else None,
                fidelity=0 if ladder else None,
            )
            count += 1
            if count >= limit:
                return


def _shots(plan: SweepPlan, experiment: Experiment) -> int:
    point, _, spec = plan.decompose(experiment.index)
    return rungs.task_shots(spec, experiment.parameters or plan.space.point(point))
