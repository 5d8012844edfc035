"""Map parameter values to the unit cube the GP works in, and back.

Floats and integers become one column each, scaled to [0, 1] over the declared range (log-scaled
parameters in log space); categoricals become one-hot columns. Parameters with a single value
carry no information and get no column at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.space import ParameterInfo


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # "float", "int" or "categorical"
    start: int  # first encoded column
    width: int
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple[Any, ...] = ()


class SpaceEncoder:
    """Encode parameter columns to an ``(n, width)`` float array in [0, 1] and decode them back."""

    def __init__(self, info: Mapping[str, ParameterInfo]) -> None:
        self.names = tuple(info)
        self.constants: dict[str, Any] = {}
        columns: list[_Column] = []
        start = 0
        for name, p in info.items():
            if p.kind == "categorical":
                if len(p.choices) <= 1:
                    self.constants[name] = p.choices[0] if p.choices else None
                    continue
                columns.append(_Column(name, "categorical", start, len(p.choices), choices=p.choices))
                start += len(p.choices)
                continue
            low, high = float(p.low), float(p.high)  # type: ignore[arg-type]
            if high <= low:
                self.constants[name] = int(low) if p.kind == "int" else low
                continue
            use_log = bool(p.log) and low > 0
            if use_log:
                low, high = float(np.log(low)), float(np.log(high))
            columns.append(_Column(name, p.kind, start, 1, low, high, use_log))
            start += 1
        self._columns = tuple(columns)
        self.width = start
        mask = np.zeros(start, dtype=bool)
        for c in columns:
            if c.kind != "categorical":
                mask[c.start] = True
        self.continuous = mask  # columns a local optimizer may move freely

    @property
    def n_params(self) -> int:
        """Parameters that have an encoded column (the others are constant)."""
        return len(self._columns)

    def encode(self, columns: Mapping[str, Any]) -> np.ndarray:
        """Encode ``{name: array}`` (all of equal length) to ``(n, width)``; unknown values give NaN."""
        n = _length(columns)
        out = np.zeros((n, self.width), dtype=float)
        for c in self._columns:
            if c.name not in columns:
                out[:, c.start : c.start + c.width] = np.nan
                continue
            values = np.asarray(columns[c.name])
            if c.kind == "categorical":
                block = np.zeros((n, c.width), dtype=float)
                known = np.zeros(n, dtype=bool)
                obj = values.astype(object)
                strict = any(isinstance(ch, (bool, np.bool_)) for ch in c.choices)
                for j, choice in enumerate(c.choices):
                    hit = _matches(obj, choice, strict)
                    block[hit, j] = 1.0
                    known |= hit
                block[~known] = np.nan
                out[:, c.start : c.start + c.width] = block
            else:
                x = _as_float(values)
                if c.log:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        x = np.log(x)
                out[:, c.start] = (x - c.low) / (c.high - c.low)
        return out

    def decode(self, encoded: np.ndarray) -> dict[str, np.ndarray]:
        """Decode ``(n, width)`` to parameter columns (integers rounded, values clipped to range)."""
        encoded = np.atleast_2d(encoded)
        n = encoded.shape[0]
        out: dict[str, np.ndarray] = {}
        for c in self._columns:
            if c.kind == "categorical":
                pos = np.argmax(encoded[:, c.start : c.start + c.width], axis=1)
                out[c.name] = np.asarray(c.choices, dtype=object)[pos]
                continue
            x = c.low + np.clip(encoded[:, c.start], 0.0, 1.0) * (c.high - c.low)
            if c.log:
                x = np.exp(x)
            if c.kind == "int":
                lo, hi = (np.exp(c.low), np.exp(c.high)) if c.log else (c.low, c.high)
                x = np.clip(np.round(x), np.ceil(lo - 1e-9), np.floor(hi + 1e-9)).astype(np.int64)
            out[c.name] = x
        for name, value in self.constants.items():
            out[name] = np.full(n, value, dtype=object if not isinstance(value, (int, float)) else None)
        return {name: out[name] for name in self.names}

    def snap(self, encoded: np.ndarray) -> np.ndarray:
        """Round-trip through decoding, so integers and one-hot blocks hold legal values."""
        return self.encode(self.decode(encoded))

    def from_unit(self, unit: np.ndarray) -> np.ndarray:
        """Map ``(n, n_params)`` uniform draws (one per encoded parameter) to encoded points."""
        unit = np.atleast_2d(unit)
        out = np.zeros((unit.shape[0], self.width), dtype=float)
        for j, c in enumerate(self._columns):
            if c.kind == "categorical":
                pos = np.minimum((unit[:, j] * c.width).astype(int), c.width - 1)
                out[np.arange(len(pos)), c.start + pos] = 1.0
            else:
                out[:, c.start] = unit[:, j]
        return out

    def parameter_bounds(self, lower: np.ndarray, upper: np.ndarray) -> dict[str, tuple[float, float]]:
        """Numeric parameter bounds of the encoded box ``[lower, upper]``, in parameter units."""
        bounds: dict[str, tuple[float, float]] = {}
        for c in self._columns:
            if c.kind == "categorical":
                continue
            ends = []
            for u in (lower[c.start], upper[c.start]):
                x = c.low + float(np.clip(u, 0.0, 1.0)) * (c.high - c.low)
                ends.append(float(np.exp(x)) if c.log else x)
            bounds[c.name] = (ends[0], ends[1])
        return bounds

    def categorical_blocks(self) -> list[tuple[str, slice, tuple[Any, ...]]]:
        """``(name, columns, choices)`` of each one-hot block."""
        return [
            (c.name, slice(c.start, c.start + c.width), c.choices)
            for c in self._columns
            if c.kind == "categorical"
        ]


def _matches(values: np.ndarray, choice: Any, strict: bool) -> np.ndarray:
    if not strict:
        return np.asarray(values == choice, dtype=bool).reshape(len(values))
    # bool is an int subclass: with boolean choices, True must not match a choice of 1
    is_bool = isinstance(choice, (bool, np.bool_))
    return np.fromiter(
        (isinstance(v, (bool, np.bool_)) == is_bool and v == choice for v in values),
        dtype=bool,
        count=len(values),
    )


def _length(columns: Mapping[str, Any]) -> int:
    for values in columns.values():
        return len(np.asarray(values))
    return 0


def _as_float(values: np.ndarray) -> np.ndarray:
    try:
        return values.astype(float)
    except (TypeError, ValueError):
        return np.asarray([_float_or_nan(v) for v in values], dtype=float)


def _float_or_nan(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
