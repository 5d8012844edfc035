"""Results checked against the sweep's expectations: what physics says each metric must be.

A sweep file's ``validation:`` section states expectations per metric::

    validation:
      fidelity:
        bounds: [0, 1]                 # every run; either side may be null
        theory: "(1 - noise)**2"       # expression over the parameters (the safe evaluator)
        tolerance: 3                   # in standard errors of the point's mean (default 3)
      energy:
        reference: -1.1373             # a known value...
        reference_stderr: 0.0005       # ...with its own uncertainty (default 0)

Each (project, point, metric) mean is compared with the expectation: ``|mean - expected|`` over
``sqrt(stderr**2 + reference_stderr**2)`` is its z-score; ``ok`` within the tolerance, ``warn``
within twice it, else ``violation``. A run outside ``bounds`` is a violation on its own. The
range flags the adapters record in ``extra.flags`` are reported as warnings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from core.errors import InputError
from core.expressions import Expression

_KEYS = {"bounds", "theory", "tolerance", "reference", "reference_stderr"}


def check_spec(
    spec: Mapping[str, Any], parameters: Iterable[str], metrics: Iterable[str] | None = None
) -> None:
    """Reject a ``validation:`` section that names unknown metrics, parameters or keys.

    Args:
        spec: metric -> expectations.
        parameters: the sweep's parameter names (theory expressions may use these).
        metrics: the metric names the projects produce, when known.

    Raises:
        InputError: naming the field (``validation.<metric>.<key>``) and the fix.
    """
    parameters = set(parameters)
    known = None if metrics is None else set(metrics)
    for metric, expectation in spec.items():
        expectation = (
            _plain_spec({metric: expectation})[metric] if isinstance(expectation, Mapping) else expectation
        )
        where = f"validation.{metric}"
        if known is not None and metric not in known:
            raise InputError(f"unknown metric '{metric}'; the projects produce {sorted(known)}", field=where)
        if not isinstance(expectation, Mapping):
            raise InputError("give a mapping with bounds, theory, tolerance or reference", field=where)
        unknown = set(expectation) - _KEYS
        if unknown:
            raise InputError(f"unknown key(s) {sorted(unknown)}; use {sorted(_KEYS)}", field=where)
        bounds = expectation.get("bounds")
        if bounds is not None and (not isinstance(bounds, list | tuple) or len(bounds) != 2):
            raise InputError("bounds must be [low, high] (null for an open side)", field=f"{where}.bounds")
        if "theory" in expectation:
            try:
                names = Expression(str(expectation["theory"])).names
            except ValueError as exc:
                raise InputError(str(exc), field=f"{where}.theory") from None
            missing = names - parameters
            if missing:
                raise InputError(
                    f"theory names unknown parameter(s) {sorted(missing)}; parameters are {sorted(parameters)}",
                    field=f"{where}.theory",
                )
        if "theory" in expectation and "reference" in expectation:
            raise InputError("give either theory or reference, not both", field=where)


def row_verdicts(frame: pd.DataFrame, spec: Mapping[str, Any]) -> pd.Series:
    """Per-row verdict from the bounds and the adapters' flags: ``ok``, ``warn: ...`` or
    ``violation: ...`` (one string per row, aligned with ``frame``).

    The same verdict the worker wrote in each row's ``validation`` column as it landed (what
    the optimizer saw), computed again from the section as the sweep states it now.
    """
    return _computed(frame, _plain_spec(spec))


def _plain_spec(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The section without its unset keys (a stored configuration spells them as null)."""
    return {m: {k: v for k, v in dict(e).items() if v is not None} for m, e in spec.items()}


def _computed(frame: pd.DataFrame, spec: Mapping[str, Any]) -> pd.Series:
    verdict = pd.Series("ok", index=frame.index, dtype=object)
    if "extra" in frame:
        for index, extra in frame["extra"].items():
            flags = _flags(extra)
            if flags:
                verdict[index] = "warn: " + "; ".join(f"{f.get('metric')}: {f.get('problem')}" for f in flags)
    for metric, expectation in spec.items():
        column = f"metric.{metric}"
        bounds = expectation.get("bounds")
        if not bounds or column not in frame:
            continue
        low, high = (
            (-np.inf if bounds[0] is None else bounds[0]),
            (np.inf if bounds[1] is None else bounds[1]),
        )
        values = frame[column]
        outside = values.notna() & ((values < low) | (values > high))
        for index in frame.index[outside]:
            verdict[index] = f"violation: {metric}={values[index]:.6g} outside [{bounds[0]}, {bounds[1]}]"
    return verdict


def _flags(extra: Any) -> list[dict[str, Any]]:
    if isinstance(extra, str) and extra:
        try:
            extra = json.loads(extra)
        except ValueError:
            return []
    return list(extra.get("flags") or []) if isinstance(extra, dict) else []


def check_results(
    frame: pd.DataFrame, groups: pd.DataFrame, keys: list[str], spec: Mapping[str, Any]
) -> dict[str, Any]:
    """Check every point mean against its expectation and every run against its bounds.

    Args:
        frame: completed rows.
        groups: the aggregated table (:func:`analysis.aggregate.aggregate`).
        keys: the parameter columns of a point.
        spec: the ``validation:`` section.

    Returns:
        ``{"counts": {"ok", "warn", "violation"}, "checks": [...], "rows": [...]}``: ``checks``
        has one entry per (project, point, metric) with an expectation (``expected``,
        ``measured``, ``stderr``, ``z``, ``status``, ``reason``); ``rows`` lists the runs whose
        verdict is not ``ok`` (``experiment_id``, ``project``, ``validation``).
    """
    spec = _plain_spec(spec)
    checks = []
    for metric, expectation in spec.items():
        if "theory" not in expectation and "reference" not in expectation:
            continue
        tolerance = float(expectation.get("tolerance", 3.0))
        ref_err = float(expectation.get("reference_stderr", 0.0))
        rows = groups[groups["metric"] == metric]
        if rows.empty:
            continue
        if "theory" in expectation:
            env = {k.removeprefix("param."): rows[k].to_numpy() for k in keys}
            expected = np.broadcast_to(
                np.asarray(Expression(str(expectation["theory"])).evaluate(env), dtype=float), len(rows)
            )
            source = f"theory {expectation['theory']}"
        else:
            expected = np.full(len(rows), float(expectation["reference"]))
            source = f"reference {expectation['reference']}"
        for (_, row), exp in zip(rows.iterrows(), expected, strict=True):
            err = float(np.hypot(row["stderr"] if pd.notna(row["stderr"]) else 0.0, ref_err))
            z = abs(row["mean"] - exp) / err if err > 0 else (0.0 if row["mean"] == exp else np.inf)
            status = "ok" if z <= tolerance else "warn" if z <= 2 * tolerance else "violation"
            checks.append(
                {
                    "project": row["project"],
                    "parameters": {k.removeprefix("param."): _plain(row[k]) for k in keys},
                    "metric": metric,
                    "expected": float(exp),
                    "measured": float(row["mean"]),
                    "stderr": err,
                    "z": None if not np.isfinite(z) else float(z),
                    "status": status,
                    "reason": f"{source}: {z:.2f} standard errors away (tolerance {tolerance:g})",
                }
            )
    verdicts = row_verdicts(frame, spec) if len(frame) else pd.Series(dtype=object)
    flagged = frame.loc[verdicts.index[verdicts != "ok"]] if len(frame) else frame
    rows = [
        {"experiment_id": r["experiment_id"], "project": r["project_name"], "validation": verdicts[i]}
        for i, r in flagged.iterrows()
    ]
    counts = {"ok": 0, "warn": 0, "violation": 0}
    for check in checks:
        counts[check["status"]] += 1
    for row in rows:
        counts[row["validation"].split(":")[0]] += 1
    return {"counts": counts, "checks": checks, "rows": rows}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
