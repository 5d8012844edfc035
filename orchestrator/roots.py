"""What a sweep submitted over HTTP may run: code from inside the project roots, and nothing else.

The CLI trusts its user, who can run anything anyway. A sweep that comes over HTTP is checked
here first (``orchestrator/web/routes.py``), every rule decided from the files, never by
importing or running them:

* **paths**: each project folder lies inside a root once symlinks and ``..`` are resolved. A
  relative path is taken from each root in turn; failing that, its leading ``../`` (which in a
  sweep file climb out of the file's own folder) are dropped and the rest is looked for in each
  root and each folder directly inside one, so ``../projects/bell`` of
  ``examples/sweeps/quickstart.yaml`` finds ``<root>/examples/projects/bell``;
* **interpreters**: ``python:`` resolves inside the project folder or to an entry of
  ``api_interpreters``; ``requirements:`` (and the files it pulls in with ``-r``, ``-e`` ...)
  inside the project folder;
* **entries**: a ``module:name`` entry (and ``circuit.build`` / ``analyze``) names a module file
  of the project folder (not the standard library, not an installed package, not one a project
  file would shadow) that defines ``name`` with ``def`` or ``class``;
* **commands**: the program is a file of the project folder, or ``python`` (when
  ``api_commands`` lists it) running a script of the project folder, or a program
  ``api_commands`` lists; no ``shell: true``, no shell metacharacters, no inline code
  (``-c``); output and parameter files stay in the run or project folder.

A refusal is :class:`OutsideRoots` (HTTP 403 with a ``fix``). It names paths relative to the
project folder or the first root, never absolutely, and never quotes a file.
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.environment import REQUIREMENT_FILES
from adapters.kinds import detect_kind
from adapters.source import python_entry
from core.config import SweepConfiguration
from core.errors import ConfigurationError, InputError
from core.project import ProjectSpec

PYTHONS = ("python", "python3", "{python}")
#: characters a shell would act on; the template is never given to one, but they signal intent
SHELL_CHARACTERS = re.compile(r"[;&|<>`$\\\n()]")
INLINE_CODE = {"-c", "-e", "--eval", "--command", "-"}


class OutsideRoots(InputError):
    """A sweep submitted over HTTP names code or files outside the project roots (HTTP 403)."""


@dataclass(frozen=True)
class HttpRules:
    """What a sweep from HTTP may use.

    Attributes:
        roots: folders its projects may lie in (the first one is the base of relative paths).
        interpreters: interpreters (or folders of them) ``python:`` may name outside the project.
        commands: programs a command template may start with besides the project's own files;
            ``python`` means the project's interpreter running a script of the project folder.
    """

    roots: list[Path]
    interpreters: list[Path] = field(default_factory=list)
    commands: list[str] = field(default_factory=lambda: ["python"])


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _shown(path: Path, base: Path) -> str:
    """``path`` relative to ``base``; outside it, only how far up and the last name
    (``../../.../counter``): the folders between would disclose the server's layout."""
    parts = Path(os.path.relpath(path, base)).parts
    ups = len(parts) - len(tuple(p for p in parts if p != ".."))
    if ups and len(parts) - ups > 1:
        parts = (*parts[:ups], "...", parts[-1])
    return "/".join(parts)


# -- paths -------------------------------------------------------------------------------------------


def resolve_projects(data: dict[str, Any], rules: HttpRules, source: str) -> None:
    """Replace each ``projects[i].path`` of ``data`` by the folder inside the roots it names.

    Raises:
        OutsideRoots: a path resolves outside every root.
        InputError: a path names no folder (or holds a NUL byte).
    """
    projects = data.get("projects")
    if not isinstance(projects, list):
        return
    roots = [root.resolve() for root in rules.roots]
    for i, project in enumerate(projects):
        if isinstance(project, dict) and "path" in project:
            project["path"] = str(_project_folder(str(project["path"]), roots, f"projects[{i}].path", source))


def _project_folder(given: str, roots: list[Path], where: str, source: str) -> Path:
    if "\0" in given:
        raise InputError("the path holds a NUL byte", source=source, field=where, fix="remove it")
    path = Path(given)
    candidates = [path.resolve()] if path.is_absolute() else [(root / path).resolve() for root in roots]
    climbs = len(path.parts) - len(path.parts[next((n for n, p in enumerate(path.parts) if p != ".."), 0) :])
    rest = Path(*path.parts[climbs:]) if climbs and climbs < len(path.parts) else None
    if rest is not None and ".." not in rest.parts:
        for root in roots:
            below = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            candidates += [(base / rest).resolve() for base in (root, *below)]
    inside = [c for c in candidates if any(_inside(c, root) for root in roots)]
    found = next((c for c in inside if c.is_dir()), None)
    if found is not None:
        return found
    if not inside:
        raise OutsideRoots(
            f"the path resolves to {_shown(candidates[0], roots[0])} (relative to the first project "
            "root), outside the project roots this server accepts",
            source=source,
            field=where,
            fix="give the project's folder relative to a project root (ORCHESTRATOR_PROJECT_ROOTS, "
            "default: the folder `serve` started in), or put the project under one",
        )
    what = "is not a folder" if inside[0].exists() else "does not exist"
    raise InputError(
        f"'{given}' {what}: looked for {_shown(inside[0], roots[0])} relative to the first project root",
        source=source,
        field=where,
        fix="give the project's folder relative to a project root; a leading ../ is dropped and the "
        "rest looked for in each root and each folder directly inside one",
    )


# -- code --------------------------------------------------------------------------------------------


def check_code(config: SweepConfiguration, rules: HttpRules, source: str) -> None:
    """Refuse a sweep whose projects would run code from outside their folders (see the module).

    Raises:
        OutsideRoots: the first such use, naming its field.
    """
    for i, spec in enumerate(config.projects):
        _Project(spec, rules, source, f"projects[{i}]").check()


class _Project:
    def __init__(self, spec: ProjectSpec, rules: HttpRules, source: str, prefix: str) -> None:
        self.spec, self.rules, self.source, self.prefix = spec, rules, source, prefix
        self.folder = Path(spec.path).resolve()

    def refuse(self, field: str, message: str, fix: str) -> OutsideRoots:
        return OutsideRoots(message, source=self.source, field=f"{self.prefix}.{field}", fix=fix)

    def check(self) -> None:
        self._interpreter()
        self._requirements()
        try:
            kind = detect_kind(self.spec, self.folder)
        except ConfigurationError:
            return  # no entry: validation says so
        if kind == "command":
            self._command()
        elif kind == "circuit" and self.spec.circuit is not None:
            self._entry(self.spec.circuit.build, "circuit.build")
            if self.spec.circuit.analyze:
                self._entry(self.spec.circuit.analyze, "circuit.analyze")
        elif self.spec.entry:
            self._entry(self.spec.entry, "entry")

    # -- interpreter and requirements --------------------------------------------------------------

    def _interpreter(self) -> None:
        if not self.spec.python:
            return
        given = Path(self.spec.python)
        python = (given if given.is_absolute() else self.folder / given).resolve()
        allowed = [Path(p).resolve() for p in self.rules.interpreters]
        if _inside(python, self.folder) or any(_inside(python, a) for a in allowed):
            return
        raise self.refuse(
            "python",
            "the interpreter resolves outside the project folder "
            f"(to {_shown(python, self.folder)} relative to it)",
            "use an interpreter inside the project folder, leave 'python' out (the worker's own "
            "runs the project), or have the server's operator list it in api_interpreters",
        )

    def _requirements(self) -> None:
        if self.spec.requirements is False or self.spec.python:
            return
        names = [self.spec.requirements] if self.spec.requirements else list(REQUIREMENT_FILES)
        for name in names:
            path = self.folder / name
            if not (path.exists() or path.is_symlink() or self.spec.requirements):
                continue  # not there to be found
            self._file_inside(path, "requirements", f"requirements file '{name}'")
            if path.name == "pyproject.toml":
                self._dependencies(path, name)
            elif path.is_file():
                self._requirement_lines(path, name, set())

    def _dependencies(self, path: Path, name: str) -> None:
        """A pyproject's dependencies name no local file outside (``pkg @ file:///...``)."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
            return  # validation reports it
        for number, dependency in enumerate(data.get("project", {}).get("dependencies", []), 1):
            for _, target in _local_targets(str(dependency)):
                local = Path(os.path.expanduser(re.sub(r"^file:(//)?", "", target)))
                local = local if local.is_absolute() else path.parent / local
                self._file_inside(local, "requirements", f"dependency {number} of '{name}'")

    def _file_inside(self, path: Path, field: str, what: str) -> None:
        resolved = path.resolve()
        if not _inside(resolved, self.folder):
            raise self.refuse(
                field,
                f"{what} resolves outside the project folder (to {_shown(resolved, self.folder)} relative to it)",
                "keep the requirements inside the project folder",
            )

    def _requirement_lines(self, path: Path, name: str, seen: set[Path]) -> None:
        """Files a requirements file pulls in (``-r``, ``-c``, ``-e``, local paths) stay inside."""
        if path.resolve() in seen or not path.is_file():
            return
        seen.add(path.resolve())
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            for option, target in _local_targets(line):
                local = Path(os.path.expanduser(re.sub(r"^file:(//)?", "", target)))
                local = local if local.is_absolute() else path.parent / local
                self._file_inside(local, "requirements", f"line {number} of '{name}'")
                if option in ("-r", "--requirement"):
                    self._requirement_lines(local, name, seen)

    # -- Python entries ----------------------------------------------------------------------------

    def _entry(self, entry: str, field: str) -> None:
        fix = "name a function or class defined in a module file of the project folder (module:name)"
        found = python_entry(entry)
        if found is None:
            raise self.refuse(field, f"'{entry}' is not module:name", fix)
        module, name = found
        top = module.split(".")[0]
        if top in sys.stdlib_module_names:
            raise self.refuse(field, f"module '{module}' is the standard library's, not the project's", fix)
        file = _module_file(self.folder, module)
        if file is None or not _inside(file.resolve(), self.folder):
            raise self.refuse(field, f"module '{module}' is not a file of the project folder", fix)
        installed = _installed_origin(top)
        if installed is not None and not _inside(installed, self.folder):
            raise self.refuse(
                field,
                f"module '{top}' is also an installed package, which a worker may import instead",
                "rename the project's module so that it shadows no installed package",
            )
        if not _defines(file, name, self.folder):
            raise self.refuse(field, f"module '{module}' defines no function or class '{name}'", fix)

    # -- command templates -------------------------------------------------------------------------

    def _command(self) -> None:
        template = self.spec.entry or ""
        options = self.spec.command
        fix = (
            "run a script of the project folder (python script.py --x {x}, or ./run.sh --x {x}), "
            "or have the server's operator list the program in api_commands"
        )
        if options is not None and options.shell:
            raise self.refuse("command.shell", "shell: true runs the template through /bin/sh", fix)
        if SHELL_CHARACTERS.search(template):
            raise self.refuse("entry", "the command template holds shell metacharacters", fix)
        try:
            tokens = shlex.split(template)
        except ValueError:
            return  # unbalanced quotes: validation says so
        if not tokens:
            return
        program, args = tokens[0], tokens[1:]
        if program in PYTHONS:
            if "python" not in self.rules.commands:
                raise self.refuse("entry", "python is not in this server's api_commands", fix)
            script = args[0] if args else ""
            if not script or script.startswith("-"):
                raise self.refuse(
                    "entry", "python runs no script of the project folder (inline code, -c, -m)", fix
                )
            self._project_file(script, "the script")
        elif not self._is_project_file(program):
            listed = program in self.rules.commands and "{" not in program
            if not listed:
                raise self.refuse(
                    "entry",
                    f"program '{Path(program).name}' is neither a file of the project folder nor in api_commands",
                    fix,
                )
            if INLINE_CODE & set(args):
                raise self.refuse(
                    "entry", f"'{program}' is given inline code ({sorted(INLINE_CODE & set(args))[0]})", fix
                )
        self._command_files()

    def _command_files(self) -> None:
        options = self.spec.command
        if options is not None:
            for name, value in (
                ("command.output_file", options.output_file),
                ("command.params_file", options.params_file),
            ):
                if value and not _stays_in_run_or_project(value):
                    raise self.refuse(
                        name,
                        "the path leaves the run and project folders",
                        "give a path relative to the run folder, or under {run_dir} or {project_dir}, without ..",
                    )

    def _is_project_file(self, word: str) -> bool:
        if "{" in word.replace("{project_dir}", ""):
            return False
        path = Path(word.replace("{project_dir}", str(self.folder)))
        path = path if path.is_absolute() else self.folder / path
        return path.is_file() and _inside(path.resolve(), self.folder)

    def _project_file(self, word: str, what: str) -> None:
        if not self._is_project_file(word):
            raise self.refuse(
                "entry",
                f"{what} '{Path(word).name}' is not a file of the project folder",
                "run a script of the project folder, named relative to it or as {project_dir}/script.py",
            )


_OPTION = re.compile(r"^(-[rce]|--requirement|--constraint|--editable)=?(.*)$")


def _local_targets(line: str) -> list[tuple[str, str]]:
    """``(option, file)`` for each file a requirements line names (``-r f``, ``-rf``,
    ``--requirement=f``, ``./pkg``, ``file:...``): URLs and package names are not files."""
    words, out = line.split("#", 1)[0].split(), []
    for j, word in enumerate(words):
        match = _OPTION.match(word)
        if match:
            target = match[2] or (words[j + 1] if j + 1 < len(words) else "")
            if target and ("://" not in target or target.startswith("file:")):
                out.append((match[1], target))
        elif word.startswith(("/", "./", "../", "~", "file:")) and (
            j == 0 or not _OPTION.match(words[j - 1])
        ):
            out.append(("", word))
    return out


def _stays_in_run_or_project(value: str) -> bool:
    """No absolute path, no ``..``, no placeholder but a leading ``{run_dir}/`` or ``{project_dir}/``
    (a parameter's value in the path could climb out)."""
    for prefix in ("{run_dir}/", "{project_dir}/"):
        value = value.removeprefix(prefix)
    return not (Path(value).is_absolute() or ".." in Path(value).parts or "{" in value)


def _module_file(folder: Path, module: str) -> Path | None:
    """The file of ``module`` in ``folder`` (``a/b.py`` or ``a/b/__init__.py``), if there is one."""
    base = folder.joinpath(*module.split("."))
    return next((f for f in (base.with_suffix(".py"), base / "__init__.py") if f.is_file()), None)


def _installed_origin(top: str) -> Path | None:
    """Where an installed module ``top`` is (``None``: nowhere; a namespace package does not count).

    The path finder only looks at folders, it runs no code. The server's working folder (first
    on ``sys.path`` under ``python -m``) is left out: workers do not import from it.
    """
    if top in sys.builtin_module_names:
        return Path("/")
    here = Path.cwd().resolve()
    paths = [p for p in sys.path if p and Path(p).resolve() != here]
    try:
        spec = importlib.machinery.PathFinder.find_spec(top, paths)
    except (ImportError, ValueError, OSError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve()


def _defines(file: Path, name: str, folder: Path) -> bool:
    """Whether ``file`` binds ``name`` at top level with ``def``/``class``, or imports it from
    another module of the project (never from the standard library or an installed package)."""
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            own = node.module is not None and node.module.split(".")[0] not in sys.stdlib_module_names
            if node.level > 0 or (own and _module_file(folder, str(node.module)) is not None):
                return True
    return False
