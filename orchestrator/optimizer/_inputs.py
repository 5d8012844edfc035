"""Read the optimizer's inputs: result rows in any of their shapes, and point indices.

Results come as ``ExperimentResult`` objects, plain dicts of the same fields, or a pandas
DataFrame from the result store. A frame may hold ``parameters``/``metrics`` columns of dicts,
or flat columns named after parameters and metrics (optionally prefixed ``param.``/``params.``
and ``metric.``/``metrics.``).

Point indices below ``space.size`` are decoded by the space. Points the optimizer added
(refinement points) have no place in the lazy product: the coordinator gives them indices from
``space.size`` on and passes their parameters in ``added``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from core.models import ExperimentResult
from core.space import ParameterSpace
from orchestrator.optimizer._gp.observations import Row

_PARAM_PREFIXES = ("param.", "params.", "param_")
_METRIC_PREFIXES = ("metric.", "metrics.", "metric_")
_ROW_FIELDS = {
    "experiment_id",
    "index",
    "status",
    "parameters",
    "metrics",
    "extra",
    "project_name",
    "execution_time",
    "cost",
    "error_message",
    "reproducibility_hash",
    "timestamp",
    "sweep_id",
    "repeat",
    "error_class",
    "attempt",
    "worker_host",
    "resource",
    "device",
    "added",
    "log",
}


def _status(value: Any) -> str:
    return str(getattr(value, "value", value) or "completed").lower()


def _row(record: Mapping[str, Any], names: Sequence[str]) -> Row:
    params = record.get("parameters")
    metrics = record.get("metrics")
    if not isinstance(params, Mapping):
        params = {}
        for key, value in record.items():
            base = next((key[len(p) :] for p in _PARAM_PREFIXES if key.startswith(p)), key)
            if base in names:
                params[base] = value
    if not isinstance(metrics, Mapping):
        metrics = {}
        for key, value in record.items():
            metric = next((key[len(p) :] for p in _METRIC_PREFIXES if key.startswith(p)), None)
            if metric is None and (key in _ROW_FIELDS or key in names or key.startswith(_PARAM_PREFIXES)):
                continue
            if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                metrics[metric or key] = float(value)
    extra = record.get("extra")
    index = record.get("index", -1)
    return Row(
        str(record.get("experiment_id", "")),
        int(index) if index is not None and not (isinstance(index, float) and math.isnan(index)) else -1,
        _status(record.get("status")),
        dict(params),
        {k: float(v) for k, v in metrics.items() if v is not None},
        dict(extra) if isinstance(extra, Mapping) else {},
    )


def to_rows(results: Any, names: Sequence[str]) -> list[Row]:
    """Normalize ``results`` (objects, dicts or a DataFrame) to rows."""
    if results is None:
        return []
    if hasattr(results, "to_dict") and hasattr(results, "columns"):
        records: Iterable[Mapping[str, Any]] = results.to_dict("records")
    else:
        records = (r.model_dump() if isinstance(r, ExperimentResult) else r for r in results)
    return [_row(record, names) for record in records]


def point_columns(
    space: ParameterSpace, indices: np.ndarray, added: Mapping[int, Mapping[str, Any]] | None
) -> dict[str, np.ndarray]:
    """Parameter columns of ``indices``; indices past ``space.size`` are looked up in ``added``."""
    indices = np.asarray(indices, dtype=np.int64)
    inside = (indices >= 0) & (indices < space.size)
    if inside.all():
        return space.columns(indices)
    out = {name: np.empty(len(indices), dtype=object) for name in space.names}
    if inside.any():
        for name, values in space.columns(indices[inside]).items():
            out[name][inside] = values
    extra = added or {}
    for pos in np.flatnonzero(~inside):
        point = extra.get(int(indices[pos]), {})
        for name in space.names:
            out[name][pos] = point.get(name)
    return out
