"""Python-entry projects: ``module:function`` (callable) and ``module:Class`` (class).

A project runs *inline* (imported into the worker process, fast, isolated from other projects'
modules by :mod:`adapters.loading`) or in a *subprocess* through :mod:`adapters.runner` (its own
interpreter, a timeout that can kill it, output captured at the file-descriptor level). ``auto``
picks the subprocess when the project has its own environment or a timeout.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from adapters import runner
from adapters.base import ProjectAdapter, kind_from_names, project_failure
from adapters.contract import EntrySignature, Progress, RunContext, StopRun
from adapters.process import run_process
from adapters.source import (
    defines_class,
    module_defines,
    python_entry,
    reading_source_only,
    source_parameters,
)
from core.errors import ConfigurationError, InputError, ScientificError

RUNNER = Path(runner.__file__).resolve()
#: seconds allowed to import a project and read its signature in a subprocess
DESCRIBE_TIMEOUT = 120.0


class PythonEntryAdapter(ProjectAdapter):
    """Shared machinery of the callable and class adapters."""

    def _method(self) -> str:
        return "run"

    def _constructor(self) -> list[str] | None:
        return None

    def _config_arg(self) -> str | None:
        return self.spec.config_arg

    def _entry(self) -> str:
        if not self.spec.entry:
            raise ConfigurationError(
                f"project '{self.spec.name}': no 'entry'; set it to module:function or module:Class"
            )
        return self.spec.entry

    def in_subprocess(self) -> bool:
        """Whether runs go through a subprocess (see ``isolation`` in the project spec)."""
        env = self.environment()
        if self.spec.isolation == "inline":
            if env is not None:
                raise ConfigurationError(
                    f"project '{self.spec.name}' has its own interpreter and cannot run "
                    f"inline; set isolation: subprocess (or auto)"
                )
            return False
        return self.spec.isolation == "subprocess" or env is not None or self.spec.timeout is not None

    def session(self) -> contextlib.AbstractContextManager[None]:
        return super().session() if self.in_subprocess() else self._loaded()

    def _run(self, params: dict[str, Any], ctx: RunContext) -> Any:
        entry = self._entry()
        if self.in_subprocess():
            return self._via_runner("call", params, ctx, self.spec.timeout)
        with self._inline(), self._capture(ctx.log):  # the import lock first: one capture at a time
            target = self._load(entry)
            try:
                return runner.call_entry(
                    target,
                    params,
                    method=self._method(),
                    constructor=self._constructor(),
                    report=ctx.report,
                    config_arg=self._config_arg(),
                    seed=ctx.seed,
                )
            except runner.EntryError as exc:
                raise self._entry_error(exc) from None

    def check_statically(self, parameters: list[str]) -> None:
        """As for any entry; but while the project's virtualenv is not built, only whether its
        module defines the entry, read from the source: validation never builds one."""
        if self.environments.is_ready(self.spec, self.root):
            super().check_statically(parameters)
            return
        module, _, name = self._entry().partition(":")
        if module_defines(self.root, module, name) is False:
            raise InputError(
                f"module '{module}' defines no '{name}'",
                field="entry",
                fix="fix 'entry' (module:function or module:Class)",
            )

    def signature(self) -> EntrySignature | None:
        entry = self._entry()
        if reading_source_only():  # no import, no interpreter: what the file settles, or nothing
            info = self._signature_from_source(entry)
            if info is None:
                return None
        elif self.in_subprocess():
            info = self._via_runner("describe", {}, None, DESCRIBE_TIMEOUT)
        else:
            info = self._signature_from_source(entry) or self._signature_by_import(entry)
        return EntrySignature(info["accepts"], info["required"], info["open"], info.get("mapping"))

    def _signature_by_import(self, entry: str) -> dict[str, Any]:
        with self._inline():
            try:
                return runner.describe(self._load(entry), self._method(), self._config_arg())
            except runner.EntryError as exc:
                raise self._entry_error(exc) from None

    def _signature_from_source(self, entry: str) -> dict[str, Any] | None:
        """The signature read from the entry's file when that settles it (see ``CallableAdapter``)."""
        return None

    # -- subprocess ------------------------------------------------------------------------------

    def _via_runner(
        self, action: str, params: dict[str, Any], ctx: RunContext | None, timeout: float | None
    ) -> Any:
        env = self.environment()
        name = self.spec.name
        with tempfile.TemporaryDirectory(prefix="orchestrator-run-") as tmp:
            reply = Path(tmp) / "reply.json"
            request: dict[str, Any] = {
                "root": str(self.root),
                "entry": self._entry(),
                "params": params,
                "action": action,
                "method": self._method(),
                "constructor": self._constructor(),
                "config_arg": self._config_arg(),
                "reply": str(reply),
            }
            watcher = None
            if ctx is not None:
                request["seed"] = ctx.seed
                watcher = _ProgressWatcher(Path(tmp), ctx.report)
                request.update(progress=str(watcher.progress), stop=str(watcher.stop))
            try:
                outcome = run_process(
                    [str(env.python if env else sys.executable), str(RUNNER)],
                    cwd=self.root,
                    env=env.variables() if env else None,
                    timeout=timeout,
                    stdin=json.dumps(request, default=str),
                )
            finally:
                if watcher is not None:
                    watcher.close()
            self._record_process(outcome, ctx, timeout)
            if not reply.is_file():
                tail = outcome.stderr.strip()[-300:] or "no output"
                raise ScientificError(
                    f"project '{name}': its process exited with code {outcome.returncode} "
                    f"before reporting a result ({tail}); fix the crash (see the log)"
                )
            record = json.loads(reply.read_text())
        if record["ok"]:
            return record["value"]
        if record["stage"] == "stopped":
            raise StopRun
        if record["stage"] != "call":
            raise ConfigurationError(f"project '{name}': {record['message']}")
        raise project_failure(
            name, record["type"], record["message"], record["where"], kind_from_names(record["mro"])
        )


class CallableAdapter(PythonEntryAdapter):
    """``entry: module:function``, called with the parameters as keywords (or as one mapping)."""

    kind = "callable"

    @classmethod
    def detects(cls, entry: str, root: Path) -> bool:
        return python_entry(entry) is not None  # asked last: a module:name that is not a class

    def _signature_from_source(self, entry: str) -> dict[str, Any] | None:
        """A plain function's signature read from its file: no import, so none of its imports' cost."""
        module, _, name = entry.strip().partition(":")
        params = source_parameters(self.root, module, name)
        if params is None:
            return None
        try:
            return runner.describe_function(params, name, self._config_arg())
        except runner.EntryError as exc:
            raise self._entry_error(exc) from None


class ClassAdapter(PythonEntryAdapter):
    """``entry: module:Class``: built with some parameters, then ``class.method`` called with the rest."""

    kind = "class"
    options_field = "class_"

    @classmethod
    def detects(cls, entry: str, root: Path) -> bool:
        # read from the source, not imported: a project with its own interpreter is told the same way
        found = python_entry(entry)
        return found is not None and defines_class(root, *found)

    def _method(self) -> str:
        return self.spec.class_.method if self.spec.class_ else "run"

    def _constructor(self) -> list[str] | None:
        return self.spec.class_.constructor if self.spec.class_ else None

    def _config_arg(self) -> str | None:
        own = self.spec.class_.config_arg if self.spec.class_ else None
        return own or self.spec.config_arg

    def entry_text(self) -> str:
        return f"{self.spec.entry} -> .{self._method()}()"


class _ProgressWatcher:
    """Feeds what a subprocess project reports (JSON lines in a file) to the run's ``Progress``,
    and creates the stop file the project's ``report`` looks for when that says stop."""

    INTERVAL = 0.2

    def __init__(self, folder: Path, report: Progress) -> None:
        self.progress, self.stop = folder / "progress.jsonl", folder / "stop"
        self.report = report
        self._read = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="project-progress", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._done.wait(self.INTERVAL):
            self._feed()

    def _feed(self) -> None:
        if not self.progress.exists():
            return
        with open(self.progress, encoding="utf-8") as fh:
            fh.seek(self._read)
            for line in iter(fh.readline, ""):
                if not line.endswith("\n"):
                    break  # still being written: read it next time
                self._read += len(line.encode())
                try:
                    self.report(json.loads(line))
                except StopRun:
                    self.stop.touch()
                except (TypeError, ValueError):
                    pass  # not a number nor a mapping of numbers: not part of the curve

    def close(self) -> None:
        self._done.set()
        self._thread.join()
        self._feed()
