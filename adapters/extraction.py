"""Turn a project's raw output into named float metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.runner import to_jsonable

_MISSING = object()


def flatten(raw: Any) -> dict[str, float]:
    """Every number in ``raw``, keyed by its dotted path; a bare number is ``value``.

    Lists are skipped (a list of samples is not a metric); reach into one with a dotted path
    such as ``energies.0`` in the ``metrics`` mapping.
    """
    return _flatten(to_jsonable(raw), "")


def _flatten(raw: Any, prefix: str) -> dict[str, float]:
    if isinstance(raw, (bool, int, float)):
        return {prefix or "value": float(raw)}
    out: dict[str, float] = {}
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if isinstance(value, (Mapping, bool, int, float)):
                out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
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
    if isinstance(value, (bool, int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def is_missing(value: Any) -> bool:
    """Whether :func:`resolve` found nothing at the path."""
    return value is _MISSING
