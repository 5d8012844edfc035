"""What an adapter and its callers hand each other: a check's report, an entry's signature, and a
run's progress reports and context."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from adapters import runner
from adapters.capture import TailBuffer
from adapters.extraction import as_number
from core.errors import ScientificError
from core.models import ExperimentResult


class ProjectTimeout(ScientificError):
    """The project ran past its timeout and was killed: recorded, and the sweep goes on.

    Not a ``TransientError``: a point that overran once will overrun again, and retrying it
    would only burn worker time.
    """


class Check(NamedTuple):
    """One line of a compatibility report."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class CompatibilityReport:
    """What ``orchestrator check`` found about one project."""

    project: str
    kind: str = ""
    entry: str = ""
    path: str = ""
    code_version: str = ""
    checks: list[Check] = field(default_factory=list)
    dry_run: ExperimentResult | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def verdict(self) -> str:
        return "PASS" if self.ok else "FAIL"

    def add(self, check: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(check, ok, detail))


@dataclass
class EntrySignature:
    """The parameters an entry accepts; ``open`` when it takes any name (``**kwargs``, a mapping).

    ``mapping`` names the parameter that receives them all as one mapping, if any.
    """

    accepts: list[str]
    required: list[str]
    open: bool = False
    mapping: str | None = None

    def mismatch(self, given: Iterable[str]) -> tuple[list[str], list[str]]:
        """(missing, unexpected) parameter names for the ``given`` ones."""
        given = set(given)
        missing = [n for n in self.required if n not in given and n not in runner.SUPPLIED]
        unexpected = [] if self.open else sorted(given - set(self.accepts))
        return missing, unexpected

    def near_misses(self, given: Iterable[str]) -> dict[str, str]:
        """Given names the entry does not take -> the argument each is probably a typo of."""
        given = set(given)
        missing, unexpected = self.mismatch(given)
        untaken = missing or [n for n in self.accepts if n not in given and n not in runner.SUPPLIED]
        return near_misses(unexpected, untaken)


def near_misses(names: Iterable[str], candidates: list[str]) -> dict[str, str]:
    """Each of ``names`` close to one of ``candidates`` (difflib) -> that candidate."""
    return {
        n: close[0] for n in names if (close := difflib.get_close_matches(n, candidates, n=1, cutoff=0.75))
    }


def did_you_mean(misses: dict[str, str]) -> tuple[str, str]:
    """(the hint, the fix) for sweep names close to an entry's arguments (``near_misses``)."""
    if not misses:
        return "", ""
    close = ", ".join(f"the sweep's '{name}' is close to the entry's '{arg}'" for name, arg in misses.items())
    mapping = ", ".join(f"{name}: {arg}" for name, arg in misses.items())
    return (
        f"; {close}: did you mean it?",
        f"correct the name in the sweep file or the entry, or map it with the project's "
        f"rename: {{{mapping}}}; otherwise ",
    )


class StopRun(BaseException):  # noqa: N818 - a signal, like GeneratorExit
    """Raised inside a project's ``report`` call when the orchestrator stops its run early.

    A ``BaseException``, so that a project's own ``except Exception`` does not swallow it.
    """


@dataclass
class Progress:
    """What a project reports while it runs, through the ``report`` keyword it may declare.

    ``report(value)`` gives the next intermediate value of the objective ``metric``;
    ``report({"energy": e, ...})`` gives metrics, of which ``metric`` (or the first) makes the
    curve. ``should_stop`` sees the curve after each value and may end the run (the sweep's
    early-stopping ``rule``, named in the stopped row's message).
    """

    metric: str | None = None
    should_stop: Callable[[list[float]], bool] | None = None
    rule: str = "median"
    curve: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    def __call__(self, value: Any) -> None:
        if isinstance(value, Mapping):
            self.metrics = {k: n for k, v in value.items() if (n := as_number(v)) is not None}
            point = self.metrics.get(self.metric) if self.metric else next(iter(self.metrics.values()), None)
        else:
            point = as_number(value)
            if point is None:
                raise TypeError(
                    f"report() takes a number or a mapping of numbers, not {type(value).__name__}"
                )
            self.metrics = {self.metric or "value": point}
        if point is not None and math.isfinite(point):
            self.curve.append(point)
            if self.should_stop is not None and self.should_stop(self.curve):
                raise StopRun


@dataclass
class RunContext:
    """Per-run state an adapter fills while it runs: captured output and details for the result."""

    log: TailBuffer = field(default_factory=TailBuffer)
    extra: dict[str, Any] = field(default_factory=dict)
    cost: float | None = None
    device: str | None = None
    report: Progress = field(default_factory=Progress)
    seed: int | None = None  # passed to an entry that declares ``seed`` (see runner.call_entry)


@dataclass
class Ran:
    """What one run of a project left, before it is made a result (``ProjectAdapter.run_only``)."""

    params: dict[str, Any]
    merged: dict[str, Any]  # as the entry took them
    ctx: RunContext
    seconds: float
    extracted: dict[str, float] = field(default_factory=dict)  # its metrics, before standardizing
    error: BaseException | None = None
    stopped: bool = False  # by its early-stopping rule
