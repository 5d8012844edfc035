"""The optimizer's checks of an adaptive sweep, run by the validation pipeline before submit.

Each raises ``InputError`` (exit code 2) with the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from core.errors import InputError
from core.expressions import Expression
from core.space import ParameterSpace

if TYPE_CHECKING:  # core.config imports this package for OptimizerConfig
    from core.config import SweepConfiguration


def count_valid_points(space: ParameterSpace, limit: int) -> int:
    """Valid points of ``space``, counting no further than ``limit``."""
    found = 0
    for chunk in space.iter_valid():
        found += len(chunk)
        if found >= limit:
            return found
    return found


def _check_early_stopping(config: SweepConfiguration, source: str) -> None:
    """The stopping rules judge curves without a model; shots as a budget needs the refit's."""
    es = config.optimizer.early_stopping
    if es.enabled and es.low_fidelity_share is not None and not config.adaptive_sampling:
        raise InputError(
            "shots as a budget needs the model to decide the low-shot runs no rung can judge, "
            "and adaptive_sampling is false; set adaptive_sampling: true or remove "
            "low_fidelity_share (the median, percentile and asha rules work without the model)",
            source=source,
            field="optimizer.early_stopping.low_fidelity_share",
        )


def check_adaptive_sweep(
    config: SweepConfiguration,
    space: ParameterSpace | None = None,
    *,
    produced_metrics: Mapping[str, Iterable[str]] | Iterable[str] | None = None,
    source: str = "<sweep>",
) -> None:
    """Check what the optimizer needs from a sweep before anything is submitted.

    Args:
        config: the validated sweep.
        space: its parameter space (built from ``config`` when omitted).
        produced_metrics: metrics the sweep's projects produce (a set, or project -> metrics);
            objective and metric-constraint names are checked against it when given.
        source: the sweep file, for the message.

    Raises:
        InputError: naming the field and how to fix it.
    """
    options = config.optimizer
    if not 0.0 <= options.coverage_share <= 1.0:
        raise InputError(
            f"coverage share {options.coverage_share} is outside 0..1; give a share such as 0.2",
            source=source,
            field="optimizer.coverage_share",
        )
    if produced_metrics is not None:
        known: set[str] = set()
        if isinstance(produced_metrics, Mapping):
            for metrics in produced_metrics.values():
                known |= set(metrics)
        else:
            known = set(produced_metrics)
        for i, objective in enumerate(config.objectives):
            if objective.metric not in known:
                raise InputError(
                    f"objective metric '{objective.metric}' is produced by no project of the sweep "
                    f"(they produce {sorted(known)}); fix the name or declare it in a project's "
                    f"'metrics'",
                    source=source,
                    field=f"objectives[{i}].metric",
                )
        for i, text in enumerate(config.constraints.metrics):
            unknown = Expression(text).names - known - set(config.parameters)
            if unknown:
                raise InputError(
                    f"constraint '{text}' names {sorted(unknown)}, which no project produces "
                    f"(they produce {sorted(known)}); fix the name",
                    source=source,
                    field=f"constraints.metrics[{i}]",
                )
    _check_early_stopping(config, source)
    if not config.adaptive_sampling or options.sampler != "gp":
        return  # the checks below are about the GP's space-filling start
    space = space if space is not None else config.space()
    varying = sum(
        1
        for p in space.info.values()
        if (len(p.choices) > 1 if p.kind == "categorical" else (p.high or 0) > (p.low or 0))
    )
    needed = options.startup_for(varying)
    valid = count_valid_points(space, needed)
    if valid < needed:
        told = "" if options.startup_points is not None else " (the default for this many parameters)"
        raise InputError(
            f"adaptive sampling needs at least optimizer.startup_points={needed}{told} valid "
            f"points for its space-filling start, but the sweep has {valid}; set "
            f"optimizer.startup_points to {max(valid, 1)} or less, add points, or set "
            f"adaptive_sampling: false",
            source=source,
            field="optimizer.startup_points",
        )
    if config.objectives and config.max_experiments is not None and config.max_experiments <= needed:
        raise InputError(
            f"max_experiments={config.max_experiments} leaves no run to the optimizer: its "
            f"space-filling start alone takes optimizer.startup_points={needed}; raise "
            f"max_experiments above {needed}, lower optimizer.startup_points, or set "
            f"adaptive_sampling: false",
            source=source,
            field="max_experiments",
        )
