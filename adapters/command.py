"""Command-line projects: a command template run in a subprocess, metrics read from what it leaves.

Parameters reach the command through ``{name}`` placeholders, environment variables or a
parameter file; metrics come from JSON on stdout, an output file (JSON, CSV, YAML) or regular
expressions over stdout. Every run gets a fresh ``{run_dir}``, so concurrent runs of one project
on one machine never overwrite each other's files when the command writes there.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import shutil
import string
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from adapters.base import ProjectAdapter, kind_from_names
from adapters.contract import EntrySignature, RunContext, did_you_mean, near_misses
from adapters.extraction import as_number
from adapters.process import ProcessOutcome
from adapters.process import run_process as _run_process
from adapters.source import python_entry
from core.errors import ConfigurationError, InputError, ScientificError
from core.project import CommandSpec

SPECIAL = ("run_dir", "project_dir", "params_file", "python")
_PYTHONS = {"python", "python3", "{python}"}
_EXCEPTION_LINE = re.compile(
    r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))(?::\s*(?P<msg>.*))?$"
)


def field_names(template: str) -> set[str]:
    """The ``{name}`` placeholders of ``template``. Raises ``ValueError`` for unbalanced braces."""
    names = set()
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None:
            names.add(re.split(r"[.\[!:]", name)[0])
    return names


class CommandAdapter(ProjectAdapter):
    """``entry`` is a command template such as ``python run.py --gamma {gamma} --shots {shots}``."""

    kind = "command"
    options_field = "command"

    @classmethod
    def detects(cls, entry: str, root: Path) -> bool:
        return python_entry(entry) is None  # anything but module:name is a command template

    @property
    def options(self) -> CommandSpec:
        return self.spec.command or CommandSpec()

    def template(self) -> str:
        if not self.spec.entry:
            raise ConfigurationError(
                f"project '{self.spec.name}': no 'entry'; set it to the command template, "
                f"e.g. 'python run.py --gamma {{gamma}}'"
            )
        return self.spec.entry

    def placeholders(self) -> set[str]:
        """The parameter names the template uses (the special placeholders excluded)."""
        return field_names(self.template()) - set(SPECIAL) - {""}

    def check_statically(self, parameters: list[str]) -> None:
        """The templates name only parameters and placeholders, and the executable exists.

        Unlike a function's signature, a template need not use every parameter: the others
        may reach the command through ``env`` or ``params_file``.
        """
        reserved = sorted(set(parameters) & set(SPECIAL))
        if reserved:
            raise InputError(
                f"parameter '{reserved[0]}' has the name of a placeholder the command adapter fills itself",
                field="entry",
                fix=f"rename the parameter: {', '.join('{' + s + '}' for s in SPECIAL)} are reserved",
            )
        known = set(parameters) | set(SPECIAL)
        templates = [("entry", self.template())]
        if self.options.output_file:
            templates.append(("command.output_file", self.options.output_file))
        for field, template in templates:
            try:
                names = field_names(template)
            except ValueError as exc:
                raise InputError(
                    f"'{template}' is not a valid template ({exc})",
                    field=field,
                    fix="write literal braces as {{ and }}",
                ) from None
            unknown = sorted(names - known)
            if unknown:
                shown = "{" + unknown[0] + "}"
                # the template's name close to a parameter the template does not use yet
                hint, rename = did_you_mean(near_misses(list(parameters), [n for n in unknown if n]))
                raise InputError(
                    f"{shown} is neither a parameter of the sweep nor a documented placeholder{hint}",
                    field=field,
                    fix=f"{rename}use one of {', '.join('{' + n + '}' for n in sorted(known))}, or add "
                    f"'{unknown[0] or '(empty)'}' to 'parameters' or the project's 'fixed'",
                )
        try:
            self._check_executable()
        except ValueError as exc:  # shlex: unbalanced quotes
            raise InputError(
                f"the command cannot be split into words ({exc})", field="entry", fix="balance the quotes"
            ) from None

    def signature(self) -> EntrySignature:
        self._check_executable()
        used = sorted(self.placeholders())
        return EntrySignature(used, used, open=self.options.env or self.options.params_file is not None)

    def _run(self, params: dict[str, Any], ctx: RunContext) -> Any:
        opts, name = self.options, self.spec.name
        env = self.environment()
        python = str(env.python if env else sys.executable)
        with tempfile.TemporaryDirectory(prefix=f"orchestrator-{name}-") as tmp:
            run_dir = Path(tmp)
            values = {k: _text(v) for k, v in params.items()}
            values.update(run_dir=str(run_dir), project_dir=str(self.root), python=python, params_file="")
            if opts.params_file:
                path = run_dir / opts.params_file
                text = (
                    yaml.safe_dump(params)
                    if path.suffix in (".yaml", ".yml")
                    else json.dumps(params, default=str)
                )
                path.write_text(text)
                values["params_file"] = str(path)
            argv = self._argv(values, python)
            variables = env.variables() if env else dict(os.environ)
            if opts.env:
                variables.update({f"{opts.env_prefix}{k.upper()}": _text(v) for k, v in params.items()})
            if opts.params_file:
                variables["ORCHESTRATOR_PARAMS_FILE"] = values["params_file"]
            if ctx.seed is not None:
                variables["ORCHESTRATOR_SEED"] = str(ctx.seed)
            cwd = self.root if opts.cwd == "project" else run_dir
            outcome = _run_process(argv, cwd=cwd, env=variables, timeout=self.spec.timeout, shell=opts.shell)
            ctx.extra["returncode"] = outcome.returncode
            self._record_process(outcome, ctx, self.spec.timeout)
            if outcome.returncode != 0:
                raise self._exit_failure(outcome)
            if opts.regex:
                return self._from_regex(outcome.stdout)
            if opts.output_file:
                return self._from_file(cwd, _format(opts.output_file, values, name, "command.output_file"))
            return self._from_stdout(outcome.stdout)

    # -- command line ----------------------------------------------------------------------------

    def _argv(self, values: dict[str, str], python: str) -> list[str] | str:
        template, name = self.template(), self.spec.name
        if self.options.shell:
            quoted = {k: shlex.quote(v) for k, v in values.items()}
            command = _format(template, quoted, name, "entry")
            first, _, rest = command.partition(" ")
            return f"{shlex.quote(python)} {rest}" if first in ("python", "python3") else command
        tokens = shlex.split(template)
        argv = [_format(token, values, name, "entry") for token in tokens]
        if tokens and tokens[0] in _PYTHONS:
            argv[0] = python  # the project's interpreter, not whatever 'python' PATH finds
        elif tokens and tokens[0].endswith(".py") and (self.root / tokens[0]).is_file():
            argv.insert(0, python)  # 'run.py --x 1' need not be executable or have a shebang
        return argv

    def _check_executable(self) -> None:
        if self.options.shell:
            return
        tokens = shlex.split(self.template())
        if not tokens:
            raise ConfigurationError(
                f"project '{self.spec.name}': the command template is empty; fix 'entry'"
            )
        first = tokens[0]
        if first in _PYTHONS:
            script = next((t for t in tokens[1:] if t.endswith(".py") and "{" not in t), None)
            if script and self.options.cwd == "project" and not (self.root / script).is_file():
                raise ConfigurationError(
                    f"project '{self.spec.name}': script {script} not found in {self.root}; fix 'entry'"
                )
        elif "{" not in first and not ((self.root / first).is_file() or shutil.which(first)):
            raise ConfigurationError(
                f"project '{self.spec.name}': command '{first}' not found (on PATH or in "
                f"the project folder); fix 'entry'"
            )

    def _exit_failure(self, outcome: ProcessOutcome) -> Exception:
        name, code = self.spec.name, outcome.returncode
        lines = [ln.strip() for ln in outcome.stderr.strip().splitlines() if ln.strip()]
        last = lines[-1][:200] if lines else "no stderr"
        if code < 0:
            return ScientificError(
                f"project '{name}': command was killed by signal {-code} ({last}); see the log"
            )
        if code in (126, 127):
            return ConfigurationError(
                f"project '{name}': command not found or not executable (exit {code}: {last}); fix 'entry'"
            )
        for line in reversed(lines):
            match = _EXCEPTION_LINE.match(line)
            if match:
                kind = kind_from_names([match["type"].rsplit(".", 1)[-1]])
                cls = ConfigurationError if kind == "configuration" else ScientificError
                fix = (
                    "fix the project's inputs or environment"
                    if cls is ConfigurationError
                    else "fix the project, or exclude these parameters with a constraint"
                )
                return cls(
                    f"project '{name}': command exited with code {code} after {line[:200]}; {fix} "
                    f"(stderr tail in the log)"
                )
        return ScientificError(
            f"project '{name}': command exited with code {code} ({last}); fix the project, "
            f"or exclude these parameters with a constraint (stderr tail in the log)"
        )

    # -- output ----------------------------------------------------------------------------------

    def _from_stdout(self, stdout: str) -> Any:
        text = stdout.strip()
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
        for line in reversed(text.splitlines()):
            if line.strip().startswith(("{", "[")):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    break
        last = text.splitlines()[-1][:120] if text else "(empty)"
        raise ConfigurationError(
            f"project '{self.spec.name}': stdout is not JSON (last line: {last!r}); make "
            f"the script print one JSON object as its last line, or read metrics with "
            f"command.regex or command.output_file"
        )

    def _from_regex(self, stdout: str) -> dict[str, float]:
        out = {}
        for metric, pattern in self.options.regex.items():
            matches = list(re.finditer(pattern, stdout, re.MULTILINE))
            if not matches:
                raise ConfigurationError(
                    f"project '{self.spec.name}': command.regex for '{metric}' ({pattern!r}) "
                    f"matched nothing in stdout; fix the pattern or the script's output"
                )
            match = matches[-1]  # progress lines come first: the last one is the result
            value = as_number(match.group(1) if match.groups() else match.group(0))
            if value is None:
                raise ConfigurationError(
                    f"project '{self.spec.name}': command.regex for '{metric}' matched "
                    f"{match.group(0)!r}, not a number; capture the number in group 1"
                )
            out[metric] = value
        return out

    def _from_file(self, cwd: Path, relative: str) -> Any:
        path, name = cwd / relative, self.spec.name
        if not path.is_file():
            raise ConfigurationError(
                f"project '{name}': the command exited 0 but wrote no {path}; fix "
                f"command.output_file or the script"
            )
        fmt = self.options.output_format or {".csv": "csv", ".yaml": "yaml", ".yml": "yaml"}.get(
            path.suffix, "json"
        )
        text = path.read_text()
        try:
            if fmt == "json":
                return json.loads(text)
            if fmt == "yaml":
                return yaml.safe_load(text)
            rows = list(csv.DictReader(io.StringIO(text)))
        except (json.JSONDecodeError, yaml.YAMLError, csv.Error) as exc:
            raise ConfigurationError(
                f"project '{name}': output file {path.name} is not valid {fmt} ({exc}); "
                f"fix the script or command.output_format"
            ) from None
        if not rows:
            raise ConfigurationError(
                f"project '{name}': output file {path.name} has no data rows; fix the script"
            )
        # the last row is the final result of scripts that append one row per step
        return {k: v for k, v in ((k, as_number(v)) for k, v in rows[-1].items()) if v is not None}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return json.dumps(value)


def _format(template: str, values: dict[str, str], project: str, where: str) -> str:
    try:
        return template.format_map(values)
    except KeyError as exc:
        raise ConfigurationError(
            f"project '{project}': {where} uses {{{exc.args[0]}}}, which is neither a "
            f"parameter nor one of {', '.join(SPECIAL)}; add it to the sweep's parameters "
            f"or 'fixed'"
        ) from None
    except (ValueError, IndexError) as exc:
        raise ConfigurationError(
            f"project '{project}': {where} is not a valid template ({exc}); write literal "
            f"braces as {{{{ and }}}}"
        ) from None
