"""The model's belief over two parameters: the GP's mean and uncertainty on a grid.

What the dashboard's live posterior shows. The refit stores its summary and the kernel
hyperparameters it ended with, not the model: the model is rebuilt here from the same
observations, warm-started from those hyperparameters (so the fit starts at its optimum and
stops after a few steps), and evaluated on a ``size x size`` grid over the two chosen parameters,
the others held at the incumbent's values. The cost is bounded like a refit's: at most
``max_training_points`` results condition the GP and ``fit_points`` fit its kernel; the grid is
at most ``MAX_SIZE`` squared points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from core.errors import InputError
from orchestrator.optimizer._gp_optimizer import GPOptimizer
from orchestrator.optimizer._inputs import to_rows
from orchestrator.optimizer.recommendation import OptimizationRecommendation, plain

if TYPE_CHECKING:
    from core.config import SweepConfiguration

MAX_SIZE = 60


def numeric_parameters(config: SweepConfiguration) -> list[str]:
    """The parameters a posterior view can put on an axis: numeric and varied."""
    optimizer = GPOptimizer(config)
    width = optimizer.encoder.width
    return list(optimizer.encoder.parameter_bounds(np.zeros(width), np.ones(width)))


def _axis(optimizer: GPOptimizer, name: str, low: float, high: float, size: int) -> np.ndarray:
    info = optimizer.space.info[name]
    if info.log and low > 0:
        values = np.geomspace(low, high, size)
    else:
        values = np.linspace(low, high, size)
    if info.kind == "int":
        values = np.unique(np.round(values))
    return values


def posterior_grid(
    config: SweepConfiguration,
    observations: Sequence[Mapping[str, Any]],
    previous: OptimizationRecommendation | None,
    x: str,
    y: str,
    *,
    size: int = 30,
    at: Mapping[str, Any] | None = None,
    in_flight: int = 0,
) -> dict[str, Any] | None:
    """The posterior mean and standard deviation of the objective over ``x`` and ``y``.

    Args:
        config: the sweep.
        observations: its results in the optimizer's shape (the ``obs`` hash).
        previous: the last refit's recommendation (its kernel fit warm-starts this one).
        x, y: two numeric, varied parameters.
        size: grid points per axis (at most ``MAX_SIZE``; fewer for a narrow integer range).
        at: values for the other parameters; default: the incumbent's.
        in_flight: experiments running or queued (they count towards the startup design, as
            in the refit).

    Returns:
        ``x``/``y`` (name, values, log), ``mean`` and ``std`` (rows follow ``y``), in the
        objective's units for one objective (the scalarized objective's otherwise), the
        ``observed`` results, the ``incumbent`` and the values ``fixed`` for the other
        parameters; None while the model has too few results (the startup design) or the
        sampler has no model.

    Raises:
        InputError: ``x`` or ``y`` is not a numeric, varied parameter of the sweep, or they are equal.
    """
    if config.optimizer.sampler != "gp" or not config.objectives:
        return None
    optimizer = GPOptimizer(config)
    encoder = optimizer.encoder
    bounds = encoder.parameter_bounds(np.zeros(encoder.width), np.ones(encoder.width))
    for field, name in (("x", x), ("y", y)):
        if name not in bounds:
            raise InputError(
                f"'{name}' is not a numeric parameter the sweep varies",
                field=field,
                fix=f"choose one of: {', '.join(bounds) or 'none (the sweep varies no numeric parameter)'}",
            )
    if x == y:
        raise InputError("x and y are the same parameter", field="y", fix="choose two different parameters")
    rows = to_rows(list(observations), optimizer.space.names)
    with threadpool_limits(1):  # small dense algebra: one BLAS thread (see _gp_optimizer)
        model = optimizer._fit(rows, in_flight, previous)
        state = model.state
        if state is None:
            return None
        incumbent = model.obs.rows[state.incumbent].parameters if state.incumbent is not None else {}
        base = {**encoder.decode(np.full((1, encoder.width), 0.5)), **dict(incumbent), **dict(at or {})}
        size = max(2, min(int(size), MAX_SIZE))
        xs, ys = (_axis(optimizer, n, *bounds[n], size) for n in (x, y))
        gx, gy = np.meshgrid(xs, ys)
        columns = {name: np.full(gx.size, _scalar(base.get(name)), dtype=object) for name in encoder.names}
        columns[x], columns[y] = gx.ravel(), gy.ravel()
        mean, var = state.post.predict(encoder.encode(columns))
    sd = np.sqrt(np.asarray(var))
    low = _units(optimizer, state, mean - sd)
    high = _units(optimizer, state, mean + sd)
    value = _units(optimizer, state, mean)
    usable = [r for r, ok in zip(model.obs.rows, model.obs.usable, strict=True) if ok]
    metric = config.objectives[0].metric if len(config.objectives) == 1 else None
    shape = gx.shape
    return plain(
        {
            "x": {"name": x, "values": xs, "log": bool(optimizer.space.info[x].log)},
            "y": {"name": y, "values": ys, "log": bool(optimizer.space.info[y].log)},
            "mean": value.reshape(shape),
            "std": (np.abs(high - low) / 2).reshape(shape),
            "metric": metric,
            "goal": config.objectives[0].goal if metric else "minimize",
            "fixed": {k: _scalar(v) for k, v in base.items() if k not in (x, y) and k in encoder.names},
            "observed": [
                {
                    "x": r.parameters.get(x),
                    "y": r.parameters.get(y),
                    "value": r.metrics.get(metric) if metric else None,
                    "experiment_id": r.experiment_id,
                }
                for r in usable
            ],
            "incumbent": dict(incumbent) or None,
            "training_points": len(state.rows),
        }
    )


def _units(optimizer: GPOptimizer, state: Any, standardized: np.ndarray) -> np.ndarray:
    """Standardized model outputs in the objective's units (see ``GPOptimizer._objective_units``)."""
    target = state.from_standard(standardized)
    if state.scalarizer.mode == "single":
        return target * optimizer._objectives[0][1]
    return target


def _scalar(value: Any) -> Any:
    """One value out of a decoded column (a length-1 array) or as it is."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else None
    return value.item() if isinstance(value, np.generic) else value
