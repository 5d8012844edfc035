"""One result as one Parquet row: the columns every row has, and how a result is flattened."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from core.expectations import Expectation, verdict
from core.models import ExperimentResult
from core.redact import server_paths

BASE_COLUMNS = [
    "sweep_id",
    "experiment_id",
    "project_name",
    "index",
    "repeat",
    "status",
    "error_class",
    "error_message",
    "execution_time",
    "cost",
    "attempt",
    "worker_host",
    "resource",
    "device",
    "fidelity",
    "added",
    "reproducibility_hash",
    "code_version",
    "timestamp",
    "parameters",
    "metrics",
    "log",
    "validation",
]


def result_row(
    result: ExperimentResult, expectations: Mapping[str, Expectation] | None = None
) -> dict[str, Any]:
    """Flatten a result into one row: seed fields, ``param.*`` and ``metric.*`` columns, and the
    run's ``validation`` verdict against the sweep's ``expectations`` and its adapter's range
    flags (``None`` for a run without metrics)."""
    row = result.model_dump(mode="json", exclude={"parameters", "metrics", "extra"})
    row["validation"] = verdict(result.metrics, result.extra, expectations or {}) if result.metrics else None
    row["parameters"] = json.dumps(result.parameters, sort_keys=True)
    row["metrics"] = json.dumps(result.metrics, sort_keys=True)
    if result.extra:
        row["extra"] = server_paths(json.dumps(result.extra, sort_keys=True, default=str))
    # read over HTTP: no path of the worker's machine (site-packages, state folder) in them
    row["error_message"], row["log"] = server_paths(row["error_message"]), server_paths(row["log"])
    for name, value in result.parameters.items():
        row[f"param.{name}"] = value
    for name, value in result.metrics.items():
        row[f"metric.{name}"] = value
    return row
