"""Turn a project's raw output into named float metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from adapters.runner import to_jsonable

_MISSING = object()


def flatten(raw: Any, prefix: str = "") -> dict[str, float]:
    """Every number in ``raw``, keyed by its dotted path; a bare number is ``value``.

    Lists are skipped (a list of samples is not a metric); reach into one with a dotted path
    such as ``energies.0`` in the ``metrics`` mapping.
    """
    raw = to_jsonable(raw)
    if isinstance(raw, (bool, int, float)) or _nonfinite_text(raw):
        return {prefix or "value": _number(raw)}
    out: dict[str, float] = {}
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (Mapping, bool, int, float)) or _nonfinite_text(value):
                out.update(flatten(value, name))
    return out


def resolve(raw: Any, path: str) -> Any:
    """The value at dotted ``path`` (keys, attributes or list indices), or ``_MISSING``."""
    value = to_jsonable(raw)
    for part in path.split(".") if path else []:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def as_number(value: Any) -> float | None:
    """``value`` as a float if it is a number (or a numeric string), else ``None``."""
    if isinstance(value, (bool, int, float)) or _nonfinite_text(value):
        return _number(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _nonfinite_text(value: Any) -> bool:
    # the subprocess runner sends NaN/inf as their repr, because JSON cannot carry them
    return isinstance(value, str) and value in ("nan", "inf", "-inf")


def _number(value: Any) -> float:
    return float(value)


def is_missing(value: Any) -> bool:
    return value is _MISSING


def finite(value: float) -> bool:
    return math.isfinite(value)
