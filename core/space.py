"""Parameter ranges and the lazy parameter space of a sweep.

A sweep's points are the cartesian product of its *axes*: one axis per grid parameter, and one
per group of sampled parameters sharing a sampling method and size (their joint design). A point
is decoded from its index by mixed-radix arithmetic, so a million-point sweep is a handful of
small arrays, never a million objects. Parameter constraints filter points, vectorised per chunk.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from core.expressions import Expression
from core.identity import canonical

Scalar = float | int | str | bool
#: values one parameter may take: a grid is materialised per axis, so this bounds its memory
MAX_AXIS_VALUES = 10_000_000
#: points of a whole sweep (the product of its axes): beyond it indices would near int64's range
MAX_SWEEP_POINTS = 10**15


class _Range(BaseModel):
    # inf/nan bounds would make a grid of unknown size (and a traceback instead of a message)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def count(self) -> int:
        """How many values the range gives, computed without building them."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _bounded(self) -> _Range:
        try:
            count = self.count()
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            return self  # incomplete: the range's own validator explains it
        if count > MAX_AXIS_VALUES:
            raise ValueError(
                f"this range gives {count:,} values, more than {MAX_AXIS_VALUES:,}; "
                f"use a coarser step, fewer points, or sampled values ({{sample: sobol, n: ...}})"
            )
        return self


class Values(_Range):
    """Explicit values: ``{values: [0.1, 0.2]}`` or just a YAML list."""

    kind: Literal["values"] = "values"
    values: list[Scalar] = Field(min_length=1)

    def count(self) -> int:
        return len(self.values)

    def grid(self) -> np.ndarray:
        return _array(self.values)

    @model_validator(mode="after")
    def _distinct(self) -> Values:
        _refuse_repeated(self.values)
        return self


class Categorical(_Range):
    """Unordered choices: ``{choices: [ring, star]}``."""

    kind: Literal["categorical"] = "categorical"
    choices: list[Scalar] = Field(min_length=1)

    def count(self) -> int:
        return len(self.choices)

    def grid(self) -> np.ndarray:
        return _array(self.choices)

    @model_validator(mode="after")
    def _distinct(self) -> Categorical:
        _refuse_repeated(self.choices)
        return self


def _refuse_repeated(values: Sequence[Scalar]) -> None:
    """A value listed twice is the same experiment twice: it would share one result (and, on a
    paid device, one quantum task billed to both rows). Repeats are what ``repeats:`` is for."""
    seen: set[str] = set()
    for value in values:
        key = repr(canonical(value))
        if key in seen:
            raise ValueError(
                f"{value!r} is listed more than once; list each value once "
                f"(to run a point several times, set repeats: N)"
            )
        seen.add(key)


class Linear(_Range):
    """Evenly spaced: ``{start: 0, stop: 1, num: 5}`` or ``{start: 0, stop: 1, step: 0.25}`` (stop inclusive)."""

    kind: Literal["linear"] = "linear"
    start: float
    stop: float
    num: int | None = Field(None, ge=1)
    step: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> Linear:
        if (self.num is None) == (self.step is None):
            raise ValueError("give exactly one of 'num' or 'step'")
        if self.stop < self.start:
            raise ValueError("'stop' must be >= 'start'")
        return self

    def count(self) -> int:
        if self.num is not None:
            return self.num
        return int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1  # type: ignore[operator]

    def grid(self) -> np.ndarray:
        if self.num is not None:
            return np.linspace(self.start, self.stop, self.num)
        return self.start + self.step * np.arange(self.count())  # type: ignore[operator]


class Log(_Range):
    """Log-spaced, both ends inclusive: ``{kind: log, start: 1e-3, stop: 1, num: 4}``."""

    kind: Literal["log"]
    start: float = Field(gt=0)
    stop: float = Field(gt=0)
    num: int = Field(ge=1)

    @model_validator(mode="after")
    def _order(self) -> Log:
        if self.stop < self.start:
            raise ValueError("'stop' must be >= 'start'")
        return self

    def count(self) -> int:
        return self.num

    def grid(self) -> np.ndarray:
        return np.geomspace(self.start, self.stop, self.num)


class IntRange(_Range):
    """Integers ``start..stop`` inclusive: ``{kind: int, start: 1, stop: 4, step: 1}``."""

    kind: Literal["int"]
    start: int
    stop: int
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _order(self) -> IntRange:
        if self.stop < self.start:
            raise ValueError("'stop' must be >= 'start'")
        if max(abs(self.start), abs(self.stop)) >= 2**62:
            raise ValueError("'start' and 'stop' must lie within +-2**62 (64-bit integers)")
        return self

    def count(self) -> int:
        return (self.stop - self.start) // self.step + 1

    def grid(self) -> np.ndarray:
        return np.arange(self.start, self.stop + 1, self.step, dtype=np.int64)


class Sampled(_Range):
    """``n`` sampled points in ``[low, high]``: ``{sample: sobol, low: 0, high: 3.14, n: 16}``.

    Sampled parameters with the same ``sample`` method and ``n`` form one joint design
    (e.g. a 2-D Sobol sequence), which is one axis of the sweep's product.
    """

    kind: Literal["sampled"] = "sampled"
    sample: Literal["uniform", "loguniform", "sobol", "lhs"]
    low: float
    high: float
    n: int = Field(ge=1)
    integer: bool = False

    def count(self) -> int:
        return self.n

    @model_validator(mode="after")
    def _bounds(self) -> Sampled:
        if self.high <= self.low:
            raise ValueError("'high' must be > 'low'")
        if self.sample == "loguniform" and self.low <= 0:
            raise ValueError("'loguniform' needs low > 0")
        return self


def _range_kind(value: Any) -> str:
    if isinstance(value, _Range):
        return str(value.kind)  # type: ignore[attr-defined]
    if isinstance(value, dict):
        if "kind" in value:
            return str(value["kind"])
        for key, kind in (("values", "values"), ("choices", "categorical"), ("sample", "sampled")):
            if key in value:
                return kind
        return "linear"
    return "values"


ParameterRange = Annotated[
    Annotated[Values, Tag("values")]
    | Annotated[Categorical, Tag("categorical")]
    | Annotated[Linear, Tag("linear")]
    | Annotated[Log, Tag("log")]
    | Annotated[IntRange, Tag("int")]
    | Annotated[Sampled, Tag("sampled")],
    Discriminator(_range_kind),
]


def coerce_range(value: Any) -> Any:
    """YAML shorthands: a list means explicit values, a scalar one fixed value."""
    if isinstance(value, list):
        return {"values": value}
    if isinstance(value, (int, float, str, bool)):
        return {"values": [value]}
    return value


def _array(values: Sequence[Scalar]) -> np.ndarray:
    if all(isinstance(v, bool) for v in values) or not all(isinstance(v, (int, float)) for v in values):
        return np.asarray(values, dtype=object)
    if all(isinstance(v, int) and -(2**63) <= v < 2**63 for v in values):
        return np.asarray(values, dtype=np.int64)
    return np.asarray(values, dtype=float)


def _design(method: str, ranges: list[Sampled], n: int, seed: int) -> np.ndarray:
    """Joint (n, d) design for sampled parameters, scaled to their bounds."""
    from scipy.stats import qmc  # lazily: scipy.stats takes a second to import

    d = len(ranges)
    if method == "sobol":
        unit = qmc.Sobol(d, scramble=True, seed=seed).random(n)
    elif method == "lhs":
        unit = qmc.LatinHypercube(d, seed=seed).random(n)
    else:
        unit = np.random.default_rng(seed).random((n, d))
    out = np.empty((n, d), dtype=float)
    for j, r in enumerate(ranges):
        if method == "loguniform":
            out[:, j] = np.exp(np.log(r.low) + unit[:, j] * (np.log(r.high) - np.log(r.low)))
        else:
            out[:, j] = r.low + unit[:, j] * (r.high - r.low)
        if r.integer:
            out[:, j] = np.round(out[:, j])
    return out


@dataclass(frozen=True)
class Axis:
    """One factor of the product: ``names`` share a ``(size, len(names))`` block of values."""

    names: tuple[str, ...]
    values: np.ndarray  # shape (size, len(names)), dtype float/int/object

    @property
    def size(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class ParameterInfo:
    """What the optimizer needs to encode a parameter."""

    name: str
    kind: str  # "float", "int", "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()


class ParameterSpace:
    """The lazy product of a sweep's parameter axes, filtered by parameter constraints."""

    def __init__(self, ranges: dict[str, Any], constraints: Sequence[Expression] = (), seed: int = 0) -> None:
        self.names = tuple(ranges)
        self.constraints = tuple(constraints)
        self.info = {name: _info(name, r) for name, r in ranges.items()}
        axes: list[Axis] = []
        groups: dict[tuple[str, int], list[tuple[str, Sampled]]] = {}
        for name, r in ranges.items():
            if isinstance(r, Sampled):
                groups.setdefault((r.sample, r.n), []).append((name, r))
            else:
                axes.append(Axis((name,), r.grid().reshape(-1, 1)))
        for i, ((method, n), members) in enumerate(groups.items()):
            block = _design(method, [r for _, r in members], n, seed + i)
            axes.append(Axis(tuple(name for name, _ in members), block))
        self.axes = tuple(axes)
        # mixed radix, last axis fastest
        self.size = math.prod(a.size for a in self.axes) if self.axes else 1
        strides, acc = [], 1
        for axis in reversed(self.axes):
            strides.append(acc)
            acc *= axis.size
        self._strides = tuple(reversed(strides))

    def columns(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Decode point indices into one array per parameter."""
        indices = np.asarray(indices, dtype=np.int64)
        out: dict[str, np.ndarray] = {}
        for axis, stride in zip(self.axes, self._strides, strict=True):
            pos = (indices // stride) % axis.size
            for j, name in enumerate(axis.names):
                out[name] = axis.values[pos, j]
        return out

    def point(self, index: int) -> dict[str, Any]:
        """One point as plain Python values (JSON-ready)."""
        cols = self.columns(np.asarray([index]))
        return {name: _plain(cols[name][0]) for name in self.names}

    def valid_mask(self, indices: np.ndarray) -> np.ndarray:
        mask = np.ones(len(indices), dtype=bool)
        if self.constraints:
            cols = self.columns(indices)
            for expr in self.constraints:
                mask &= np.asarray(expr.evaluate(cols), dtype=bool)
        return mask

    def iter_valid(self, start: int = 0, chunk: int = 65536) -> Iterator[np.ndarray]:
        """Yield arrays of valid point indices in order, ``chunk`` candidates at a time."""
        for lo in range(start, self.size, chunk):
            idx = np.arange(lo, min(lo + chunk, self.size), dtype=np.int64)
            yield idx[self.valid_mask(idx)]

    def any_valid(self, limit: int = 5_000_000) -> bool:
        """True if some point passes the constraints (checks at most ``limit`` points)."""
        for lo in range(0, min(self.size, limit), 65536):
            idx = np.arange(lo, min(lo + 65536, self.size), dtype=np.int64)
            if self.valid_mask(idx).any():
                return True
        return self.size > limit


def _info(name: str, r: Any) -> ParameterInfo:
    if isinstance(r, (Categorical,)) or (isinstance(r, Values) and _array(r.values).dtype == object):
        choices = tuple(r.choices if isinstance(r, Categorical) else r.values)
        return ParameterInfo(name, "categorical", choices=choices)
    if isinstance(r, Sampled):
        return ParameterInfo(
            name, "int" if r.integer else "float", r.low, r.high, log=r.sample == "loguniform"
        )
    grid = r.grid()
    kind = "int" if grid.dtype.kind == "i" else "float"
    return ParameterInfo(name, kind, float(grid.min()), float(grid.max()), log=isinstance(r, Log))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value
