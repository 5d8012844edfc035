"""How one pydantic error of a sweep file reads: what is wrong, where, and how to fix it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: pydantic's bound errors: kind -> (the context key of the bound, how a fix says it)
_BOUNDS = {
    "less_than_equal": ("le", "no more than"),
    "less_than": ("lt", "below"),
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "above"),
}
#: a validator's message may begin with the field it is about: ``device: ...``
_SUBFIELD = re.compile(r"^([a-z_]+): ")


def explain(err: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """``(what is wrong, how to fix it, the field under the error's place it is about)``."""
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return (
            "unknown key",
            "remove it or check its spelling against the config reference in README.md",
            None,
        )
    if kind == "missing":
        return "required field is missing", "add it", None
    if kind == "too_short":
        return msg, "give at least one entry", None
    if kind == "value_error":  # our validators' own text: "[field: ]what is wrong; how to fix it"
        text = msg.removeprefix("Value error, ")
        given = err.get("input")
        match = _SUBFIELD.match(text)
        subfield = (
            match.group(1) if match and isinstance(given, Mapping) and match.group(1) in given else None
        )
        what, _, fix = text.removeprefix(f"{subfield}: " if subfield else "").partition("; ")
        return what, fix or "fix the value", subfield
    if kind == "finite_number":
        return f"{msg} (got {err.get('input')!r})", "give a finite number", None
    if kind in _BOUNDS and (bound := (err.get("ctx") or {}).get(_BOUNDS[kind][0])) is not None:
        return f"{msg} (got {err.get('input')!r})", f"give a number {_BOUNDS[kind][1]} {bound}", None
    return f"{msg} (got {err.get('input')!r})", "fix the value", None
