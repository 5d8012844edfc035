"""What the dashboard draws beyond the table: the best trial per objective, parameter importance,
intermediate-value curves, and sweeps side by side.

Everything is computed from the sweep's rows as the trial table reads them
(:func:`~orchestrator.web.trials.sweep_table`), and bounded: importance uses the analysis'
estimators (:mod:`analysis.sensitivity`) on at most ``surrogate_sensitivity``'s 128 points and is
kept until the row count changes; at most ``MAX_CURVES`` curves are sent.
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestrator.web.trials import sweep_table

if TYPE_CHECKING:
    from orchestrator.api import Orchestrator

log = logging.getLogger(__name__)
MAX_CURVES = 200
#: metric columns that are a metric's uncertainty or a run's setting, never an objective to chart
UNCERTAINTY_SUFFIXES = ("_stderr", "_std", "_variance", "_err", "_error", "_ci_low", "_ci_high")
_importance: dict[tuple[str, str, int], list[dict[str, Any]]] = {}


def sweep_config(orch: Orchestrator, sweep_id: str) -> dict[str, Any]:
    return json.loads(orch.state.config_json(sweep_id) or "{}")


def objectives_of(config: dict[str, Any]) -> list[dict[str, str]]:
    return [{"metric": o["metric"], "goal": o.get("goal", "maximize")} for o in config.get("objectives", [])]


def chart_metrics(table: pa.Table) -> list[str]:
    """Numeric metric names, uncertainties left out."""
    return [
        c.removeprefix("metric.")
        for c in table.column_names
        if c.startswith("metric.") and _numeric(table, c) and not c.endswith(UNCERTAINTY_SUFFIXES)
    ]


def varied_parameters(table: pa.Table) -> list[str]:
    """Parameters that take more than one value in the rows (a ladder's rung is no parameter)."""
    return [
        c.removeprefix("param.")
        for c in table.column_names
        if c.startswith("param.")
        and not _is_rung(table, c)
        and len(pc.unique(table.column(c).drop_null())) > 1
    ]


#: the row column of a fidelity ladder's rung (``analysis.dataset.RUNG``: that package loads SciPy)
RUNG = "fidelity"


def _is_rung(table: pa.Table, column: str) -> bool:
    """``param.fidelity`` of a fidelity ladder: the promoted experiments' rung, not a swept value."""
    return (
        column == f"param.{RUNG}"
        and RUNG in table.column_names
        and table.column(RUNG).null_count < len(table)
    )


def _numeric(table: pa.Table, column: str) -> bool:
    kind = table.schema.field(column).type
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def completed(table: pa.Table) -> pa.Table:
    if "status" not in table.column_names:
        return table
    return table.filter(pc.equal(table.column("status"), "completed"))


def best_trials(table: pa.Table, objectives: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The best completed row of each objective: value, its standard error if reported, parameters."""
    done = completed(table)
    varied = {f"param.{n}" for n in varied_parameters(table)}
    out = []
    for objective in objectives:
        column = f"metric.{objective['metric']}"
        if column not in done.column_names or done.num_rows == 0:
            continue
        values = done.column(column).to_numpy(zero_copy_only=False).astype(float)
        if not np.isfinite(values).any():
            continue
        pick = int(np.nanargmax(values) if objective["goal"] == "maximize" else np.nanargmin(values))
        row = done.slice(pick, 1).to_pylist()[0]
        stderr = row.get(f"{column}_stderr")
        out.append(
            {
                **objective,
                "value": float(values[pick]),
                "stderr": stderr if isinstance(stderr, (int, float)) and math.isfinite(stderr) else None,
                "experiment_id": row.get("experiment_id"),
                "index": row.get("index"),
                "parameters": {k.removeprefix("param."): v for k, v in row.items() if k in varied},
                "metrics": {
                    k.removeprefix("metric."): v
                    for k, v in row.items()
                    if k.startswith("metric.") and isinstance(v, (int, float)) and math.isfinite(v)
                },
                "completed": done.num_rows,
            }
        )
    return out


def importance(sweep_id: str, table: pa.Table, metric: str, log_scaled: list[str]) -> list[dict[str, Any]]:
    """Sensitivity indices of ``metric`` (most important first), kept while the rows stay the same."""
    from analysis.dataset import top_rungs
    from analysis.sensitivity import grid_sensitivity, surrogate_sensitivity  # SciPy, SALib: when asked

    key = (sweep_id, metric, table.num_rows)
    if key in _importance:
        return _importance[key]
    column = f"metric.{metric}"
    done = completed(table)
    found: list[dict[str, Any]] = []
    if column in done.column_names and done.num_rows >= 3:
        # On a ladder, the top rung's rows: pooling rungs would rank the simulator's bias.
        frame = top_rungs(done.to_pandas()) if RUNG in done.column_names else done.to_pandas()
        params = [c for c in frame.columns if c.startswith("param.") and not _is_rung(done, c)]
        frame = frame[[*params, column]]
        varied = [k for k in params if frame[k].nunique() > 1]
        numeric = [k for k in varied if frame[k].dtype.kind in "fi"]
        try:
            found = grid_sensitivity(frame, varied, metric, n_boot=50) if len(varied) >= 2 else []
            if not found and numeric:
                found, _ = surrogate_sensitivity(
                    frame, numeric, metric, log_scaled=[f"param.{n}" for n in log_scaled], n_base=256
                )
        except (ValueError, np.linalg.LinAlgError) as exc:  # a degenerate fit: show nothing
            log.warning("importance of %s/%s failed: %s", sweep_id, metric, exc)
    if len(_importance) > 256:  # a long-running server: forget old sweeps' rankings
        _importance.clear()
    _importance[key] = found
    return found


def curves(table: pa.Table) -> list[dict[str, Any]]:
    """Intermediate values the projects reported (``extra["intermediate"]``), the latest first."""
    if "extra" not in table.column_names:
        return []
    out: list[dict[str, Any]] = []
    extras = table.column("extra").to_pylist()
    for i in range(len(extras) - 1, -1, -1):
        if len(out) >= MAX_CURVES:
            break
        text = extras[i]
        if not text or "intermediate" not in text:
            continue
        points = json.loads(text).get("intermediate") or []
        values = [_value(p) for p in points]
        if values:
            row = table.slice(i, 1).select(["experiment_id", "status"]).to_pylist()[0]
            out.append({**row, "values": values})
    return out


def _value(point: Any) -> float | None:
    """One reported value: a number, or a dict's first numeric entry other than ``step``."""
    if isinstance(point, dict):
        point = next((v for k, v in point.items() if k != "step" and isinstance(v, (int, float))), None)
    return float(point) if isinstance(point, (int, float)) and math.isfinite(point) else None


def insights(orch: Orchestrator, sweep_id: str, metric: str | None) -> dict[str, Any]:
    table = sweep_table(orch, sweep_id)
    config = sweep_config(orch, sweep_id)
    objectives = objectives_of(config)
    metrics = chart_metrics(table)
    chosen = metric or (objectives[0]["metric"] if objectives else (metrics[0] if metrics else None))
    log_scaled = [
        k for k, v in config.get("parameters", {}).items() if isinstance(v, dict) and v.get("kind") == "log"
    ]
    if not objectives and chosen:
        objectives = [{"metric": chosen, "goal": "maximize"}]
    return {
        "objectives": objectives,
        "metrics": metrics,
        "parameters": varied_parameters(table),
        "log": log_scaled,
        "metric": chosen,
        "best": best_trials(table, objectives),
        "importance": importance(sweep_id, table, chosen, log_scaled) if chosen in metrics else [],
        "curves": curves(table),
    }


def compare(orch: Orchestrator, sweep_ids: list[str]) -> list[dict[str, Any]]:
    """Sweeps side by side: state, runs against their budget, cost, best per objective."""
    out = []
    for sweep_id in sweep_ids:
        status = orch.status(sweep_id)
        counts = status.counts
        table = sweep_table(orch, sweep_id)
        out.append(
            {
                "execution_id": sweep_id,
                "name": status.name,
                "state": status.state,
                "runs": sum(counts.get(k, 0) for k in ("completed", "failed", "early_stopped")),
                "reused": counts.get("reused", 0),
                "failed": counts.get("failed", 0),
                "max_experiments": status.max_experiments,
                "total": status.total if status.total is not None else status.planned,
                "cost": status.cost,
                "elapsed_seconds": status.elapsed_seconds,
                "best": best_trials(table, objectives_of(sweep_config(orch, sweep_id))),
            }
        )
    return out
