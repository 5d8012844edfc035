"""The adapter interface (the seed's ``ProjectAdapter``) and what every adapter returns.

``execute_with_parameters`` is a template method: a subclass only implements ``_run`` (and,
for ``orchestrator check``, ``signature``); capturing output, timing, extracting and
standardizing metrics and turning every failure into a classified, explained result happen here.
"""

from __future__ import annotations

import builtins
import contextlib
import math
import os
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from adapters import runner
from adapters.capture import Captures, TailBuffer, capture_inline
from adapters.contract import (
    CompatibilityReport,
    EntrySignature,
    Progress,
    ProjectTimeout,
    Ran,
    RunContext,
    StopRun,
    did_you_mean,
)
from adapters.environment import Environment, EnvironmentManager
from adapters.extraction import as_number, flatten, is_missing, resolve
from adapters.loading import project_imports
from adapters.metrics import standardize
from adapters.process import ProcessOutcome
from core.errors import (
    ConfigurationError,
    ExperimentError,
    InputError,
    ResourceError,
    ScientificError,
    TransientError,
    classify,
)
from core.identity import code_version
from core.models import ExperimentResult, ExperimentStatus
from core.project import ProjectSpec
from core.redact import server_paths

StandardizedMetrics = dict[str, float]
#: ``(program, shots, device) -> result``: runs a circuit on a managed device (see :mod:`adapters.circuit`)
DeviceRunner = Callable[[Any, int, str], Any]

_ERRORS: dict[str, type[ExperimentError]] = {
    cls.kind: cls for cls in (TransientError, ConfigurationError, ResourceError, ScientificError)
}
# Raised into a task by the worker (Celery's soft time limit); named, since adapters import no Celery.
_WORKER_EXCEPTIONS = {"SoftTimeLimitExceeded"}
_FIX = {
    "transient": "it is retried; if it persists, check the network or service the project uses",
    "configuration": "fix the project's configuration or inputs (see the log for the traceback)",
    "scientific": "fix the project, or exclude these parameters with a constraint (see the log)",
    "resource": "free the resource or raise the limit",
}


class ProjectAdapter(ABC):
    """Runs one existing project with a set of parameters, without changing its code.

    Each kind of project is a subclass, listed in :data:`adapters.kinds.ADAPTERS`: it declares its
    ``kind`` (the sweep file's ``kind:``), how a ``kind: auto`` project is told to be one
    (``options_field``, :meth:`detects`), and provides ``_run``, ``signature`` and, where the
    generic one does not fit, :meth:`check_statically`.

    Args:
        spec: the project's entry in the sweep file.
        root: the project folder.
        environments: finds or builds project interpreters (default: under the state folder).
        device_runner: runs circuits on managed Braket devices (injected by the Braket worker);
            used by the kinds that run circuits, accepted by all for a uniform constructor.
    """

    kind: ClassVar[str] = "?"
    #: the ``ProjectSpec`` field of this kind's options block (``class_``), if it has one; a
    #: project that gives the block is of this kind
    options_field: ClassVar[str | None] = None

    def __init__(
        self,
        spec: ProjectSpec,
        root: Path,
        *,
        environments: EnvironmentManager | None = None,
        device_runner: DeviceRunner | None = None,
    ) -> None:
        self.spec = spec
        self.root = Path(root).resolve()
        self.environments = environments or EnvironmentManager()
        self.device_runner = device_runner
        self._captures: Captures | None = None  # while in a session

    # -- what subclasses provide ------------------------------------------------------------------

    @classmethod
    def detects(cls, entry: str, root: Path) -> bool:
        """Whether a ``kind: auto`` project with this ``entry`` and no options block is of this kind.

        Asked in the order of :data:`adapters.kinds.ADAPTERS`; the first kind that says yes wins.
        """
        return False

    @abstractmethod
    def _run(self, params: dict[str, Any], ctx: RunContext) -> Any:
        """Run the project once with ``params`` (fixed ones merged in) and return its raw output."""

    def signature(self) -> EntrySignature | None:
        """The parameters the entry accepts, or ``None`` when that cannot be known before running.

        Raises:
            ExperimentError: the entry cannot be found.
        """
        return None

    def check_statically(self, parameters: list[str]) -> None:
        """Check, running none of the project's code, that a sweep can call it with ``parameters``.

        The validation pipeline's project stage (``orchestrator/validation.py``). By default the
        entry's signature must accept the parameters.

        Args:
            parameters: the sweep's parameter names and the project's ``fixed`` ones.

        Raises:
            InputError: the parameters do not fit; its ``field`` is the project's own
                (``entry``, ``command.output_file``), without the ``projects[i].`` prefix.
            ExperimentError: the entry cannot be found (the adapter's own explanation).
        """
        signature = self.signature()  # imports the entry at most, runs nothing
        if signature is None:
            return
        missing, unexpected = signature.mismatch(parameters)
        if missing or unexpected:
            parts = [f"missing {', '.join(missing)}"] * bool(missing)
            parts += [f"unexpected {', '.join(unexpected)}"] * bool(unexpected)
            hint, rename = did_you_mean(signature.near_misses(parameters))
            raise InputError(
                f"entry {self.entry_text()} does not fit the parameters ({'; '.join(parts)}){hint}",
                field="entry",
                fix=rename + "add the missing ones to 'parameters' or the project's 'fixed', and drop or "
                "rename the unexpected ones"
                + runner.config_hint(signature.accepts, signature.required, parameters, self.kind),
            )

    def environment(self) -> Environment | None:
        """The project's interpreter (built if needed), or ``None`` for the worker's own."""
        return self._environment

    @cached_property
    def _environment(self) -> Environment | None:
        return self.environments.for_project(self.spec, self.root)

    # -- the seed's interface ---------------------------------------------------------------------

    def run(self, params: dict[str, Any]) -> Any:
        """Run the project once and return its raw output (exceptions propagate)."""
        return self._run(self.spec.arguments(params), RunContext())

    def extract_metrics(self, raw: Any) -> StandardizedMetrics:
        """Named floats from the raw output, picked and renamed through ``spec.metrics`` (dotted paths)."""
        name = self.spec.name
        if self.spec.metrics:
            out = {}
            for metric, path in self.spec.metrics.items():
                value = resolve(raw, path)
                if is_missing(value):
                    have = ", ".join(sorted(flatten(raw))) or "no numeric fields"
                    raise ConfigurationError(
                        f"project '{name}': metric '{metric}' reads '{path}', which the output does not have "
                        f"(it has: {have}); fix 'metrics' or make the project report it"
                    )
                number = as_number(value)
                if number is None:
                    raise ConfigurationError(
                        f"project '{name}': metric '{metric}' at '{path}' is not a number "
                        f"(got {str(value)[:80]!r}); point 'metrics' at a numeric field"
                    )
                out[metric] = number
        else:
            out = flatten(raw)
            if not out:
                raise ConfigurationError(
                    f"project '{name}': the output has no numeric metrics (got {str(raw)[:120]!r}); return a "
                    f"number or a mapping of numbers, or pick fields with 'metrics'"
                )
        for metric, value in out.items():
            if not math.isfinite(value):
                raise ScientificError(
                    f"project '{name}': metric '{metric}' is {value}; the run produced no "
                    f"usable value at these parameters (if the metric is not needed, pick "
                    f"the ones you want with 'metrics')"
                )
        return out

    def execute_with_parameters(
        self, params: dict[str, Any], progress: Progress | None = None, seed: int | None = None
    ) -> ExperimentResult:
        """Run and wrap the outcome in an ``ExperimentResult``; a failing project gives a FAILED result.

        The result carries the metrics (standardized as declared), the captured log tail, the
        error class and an actionable message. ``experiment_id``, sweep and attempt fields are
        left for the caller to fill. Intermediate values the project reported are in
        ``extra["intermediate"]``; a run that ``progress`` stopped is EARLY_STOPPED with the
        metrics it last reported.
        """
        return self.result_of(self.run_only(params, progress, seed))

    def run_only(
        self, params: dict[str, Any], progress: Progress | None = None, seed: int | None = None
    ) -> Ran:
        """The first half of :meth:`execute_with_parameters`: run the project and keep what it
        left; :meth:`result_of` makes the result, on any thread (a batch does that while the next
        experiment runs: after a 10-ms sleep it cost a third of a run's overhead)."""
        merged = self.spec.arguments(params)  # as the entry takes them: fixed merged, names renamed
        ctx = RunContext(device=self.spec.device, report=progress or Progress(), seed=seed)
        ctx.extra["kind"] = self.kind
        started, seconds = time.perf_counter(), 0.0
        try:
            raw = self._run(merged, ctx)
            seconds = time.perf_counter() - started
            # read now: the entry may return an object its next run changes
            return Ran(params, merged, ctx, seconds, self.extract_metrics(raw))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - classified and recorded, never swallowed
            if type(exc).__name__ in _WORKER_EXCEPTIONS:
                raise  # the worker's own time limit: its business, not the project's failure
            return Ran(params, merged, ctx, seconds or time.perf_counter() - started, error=exc)
        except StopRun:
            return Ran(params, merged, ctx, time.perf_counter() - started, stopped=True)

    def result_of(self, ran: Ran) -> ExperimentResult:
        """The ``ExperimentResult`` of a run :meth:`run_only` made (see :meth:`execute_with_parameters`)."""
        ctx, seconds = ran.ctx, ran.seconds
        metrics: dict[str, float] = {}
        status, error, error_class = ExperimentStatus.COMPLETED, None, None
        failure = ran.error
        if failure is None and not ran.stopped:
            try:
                standard = standardize(
                    ran.extracted, ran.merged, self.spec.standardize, seconds=seconds, cost=ctx.cost
                )
                metrics, ctx.cost = standard.metrics, standard.cost
                if standard.flags:
                    ctx.extra["flags"] = standard.flags
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - as a failure of the run
                failure = exc
        if failure is not None:
            status, error_class = ExperimentStatus.FAILED, classify(failure)
            error = str(failure) if isinstance(failure, ExperimentError) else self._unexpected(failure)
            shown = failure if not isinstance(failure, ExperimentError) else failure.__cause__
            if shown is not None:
                ctx.log.section("traceback", self._traceback(shown))
        elif ran.stopped:
            status, metrics = ExperimentStatus.EARLY_STOPPED, dict(ctx.report.metrics)
            error = (
                f"stopped early after {len(ctx.report.curve)} reported values by the {ctx.report.rule} "
                f"rule: worse than its peers at that step"
            )
        if ctx.report.curve:
            ctx.extra["intermediate"] = list(ctx.report.curve)
        return ExperimentResult(
            experiment_id="",
            project_name=self.spec.name,
            parameters=dict(ran.params),
            metrics=metrics,
            execution_time=seconds,
            cost=ctx.cost,
            status=status,
            error_message=server_paths(error, self.root),  # the project's files relative to it
            error_class=error_class,
            resource=self.spec.resource,
            device=ctx.device,
            log=server_paths(ctx.log.getvalue(), self.root) or "",
            extra=ctx.extra,
        )

    def validate_compatibility(
        self, parameters: Iterable[str] | None = None, dry_run: dict[str, Any] | None = None
    ) -> CompatibilityReport:
        """Check the project against a sweep: folder, environment, entry, signature, one dry run.

        Args:
            parameters: the sweep's parameter names (the project's ``fixed`` ones are added).
            dry_run: one point to execute; skipped when omitted or when an earlier check failed.
        """
        report = CompatibilityReport(self.spec.name, self.kind, self.entry_text(), str(self.root))
        if not self.root.is_dir():
            report.add("project folder", False, f"{self.root} is not a folder; fix 'path'")
            return report
        report.add("project folder", True, str(self.root))
        report.code_version = code_version(self.root)
        try:
            env = self.environment()
        except ExperimentError as exc:
            report.add("environment", False, str(exc))
            return report
        report.add("environment", True, _describe_env(env))
        try:
            sig = self.signature()
            report.add("entry found", True, self.entry_text())
        except ExperimentError as exc:
            report.add("entry found", False, str(exc))
            return report
        if parameters is not None and sig is not None:
            given = self.spec.argument_names(list(parameters))
            missing, unexpected = sig.mismatch(given)
            detail = "; ".join(
                [f"missing: {', '.join(missing)}"] * bool(missing)
                + [f"unexpected: {', '.join(unexpected)}"] * bool(unexpected)
            )
            report.add(
                "signature",
                not (missing or unexpected),
                detail
                + "; align the sweep's parameters (or 'fixed') with the entry"
                + runner.config_hint(sig.accepts, sig.required, given, self.kind)
                if detail
                else f"accepts {', '.join(sig.accepts) or '**kwargs'}" + (" (open)" if sig.open else ""),
            )
        elif parameters is not None:
            report.add("signature", True, "takes a params mapping; checked by the dry run")
        if dry_run is not None and report.ok:
            result = self.execute_with_parameters(dry_run)
            report.dry_run = result
            if result.status == ExperimentStatus.COMPLETED:
                shown = ", ".join(f"{k}={v:.6g}" for k, v in list(result.metrics.items())[:12])
                report.add("dry run", True, f"{shown} in {result.execution_time:.2f} s")
            else:
                report.add("dry run", False, f"{result.error_class} error: {result.error_message}")
        return report

    # -- helpers for subclasses -------------------------------------------------------------------

    def entry_text(self) -> str:
        return self.spec.entry or ""

    def _record_process(self, outcome: ProcessOutcome, ctx: RunContext | None, timeout: float | None) -> None:
        """Keep what a project's process left in the run (its output, its interpreter), and raise
        ``ProjectTimeout`` if it was killed at its ``timeout``. ``ctx`` is ``None`` outside a run."""
        if ctx is not None:
            ctx.log.section("stdout", outcome.stdout)
            ctx.log.section("stderr", outcome.stderr)
            env = self.environment()
            if env is not None:
                ctx.extra["environment"] = str(env.location or env.python)
                ctx.extra["environment_built"] = env.built
        if outcome.timed_out:
            raise ProjectTimeout(
                f"project '{self.spec.name}' did not finish within its timeout of {timeout:g} s and "
                f"its process group was killed; raise 'timeout' if such points are expected to be "
                f"slow, or exclude them with a constraint"
            )

    def _traceback(self, exc: BaseException) -> str:
        # start at the project's first frame: the adapter's own frames only hide the cause
        tb = exc.__traceback__
        while tb is not None and not Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(self.root):
            tb = tb.tb_next
        return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))[-2000:]

    def _unexpected(self, exc: BaseException) -> str:
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(self.root)]
        last = (ours or frames)[-1:] or None
        where = f"{Path(last[0].filename).name}:{last[0].lineno}" if last else ""
        return project_failure(self.spec.name, type(exc).__name__, str(exc), where, classify(exc)).args[0]

    # -- in-process loading, shared by the Python-entry and circuit adapters --------------------

    def session(self) -> contextlib.AbstractContextManager[None]:
        """Keep the project loaded over several runs in a row (a batch's): its imports, its folder
        as the working directory and one log capture are set up once, not once per run (after a
        10-ms sleep, a third of a run's overhead). Each run still starts in the project folder,
        with its own output. A no-op for projects that run in a process of their own."""
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _loaded(self) -> Iterator[None]:
        """:meth:`session` for the adapters that run the project in this process."""
        with self._inline(), Captures() as captures:
            self._captures = captures
            try:
                yield
            finally:
                self._captures = None

    @contextlib.contextmanager
    def _inline(self) -> Iterator[None]:
        # cwd is the project folder, as when the researcher runs it by hand (relative data paths)
        if self._captures is not None:  # in a session: loaded already; a run may have moved the cwd
            os.chdir(self.root)
            yield
            return
        with project_imports(self.root), contextlib.chdir(self.root):
            yield

    def _capture(self, sink: TailBuffer) -> contextlib.AbstractContextManager[TailBuffer]:
        """Capture a run's output into ``sink`` (see :mod:`adapters.capture`)."""
        return self._captures.to(sink) if self._captures is not None else capture_inline(sink)

    def _load(self, entry: str) -> Any:
        try:
            return runner.load_entry(entry)
        except runner.EntryError as exc:
            raise self._entry_error(exc) from exc.__cause__

    def _entry_error(self, exc: runner.EntryError) -> ConfigurationError:
        return ConfigurationError(f"project '{self.spec.name}': {exc}")


class UnusableAdapter(ProjectAdapter):
    """Stands in for a project whose spec names no usable kind: every run fails with ``error``."""

    kind = "unknown"

    def __init__(self, spec: ProjectSpec, root: Path, error: ExperimentError) -> None:
        super().__init__(spec, root)
        self.error = error

    def environment(self) -> Environment | None:
        return None

    def signature(self) -> EntrySignature | None:
        raise self.error

    def _run(self, params: dict[str, Any], ctx: RunContext) -> Any:
        raise self.error


def project_failure(project: str, type_name: str, message: str, where: str, kind: str) -> ExperimentError:
    """The classified error for an exception raised by the project's own code."""
    at = f" at {where}" if where else ""
    if len(message) > 400:  # the whole text is in the log's traceback
        message = message[:400] + " [...]"
    text = f"project '{project}' raised {type_name}: {message or '(no message)'}{at}; {_FIX.get(kind, _FIX['scientific'])}"
    return _ERRORS.get(kind, ScientificError)(text)


def kind_from_names(mro_names: list[str]) -> str:
    """Classify an exception known only by its class names (from a subprocess), as ``classify`` would."""
    for name in mro_names:
        builtin = getattr(builtins, name, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            try:
                return classify(builtin())
            except Exception:  # noqa: BLE001 - some builtins need arguments; fall through to the parent
                continue
    return ScientificError.kind


def _describe_env(env: Environment | None) -> str:
    if env is None:
        return "the worker's own interpreter"
    if env.location is None:
        return f"project interpreter {env.python}"
    return f"virtualenv {env.location}" + (" (built now)" if env.built else " (cached)")
