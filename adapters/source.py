"""What a project's source says, read without importing it: which names a module defines, a
function's parameters, the installed modules it imports.

Importing a project costs what its imports cost (Braket's are seconds), may need its own
interpreter, and runs its code; reading the file costs none of that.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

_PYTHON_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_SOURCE_ONLY: ContextVar[bool] = ContextVar("source_only", default=False)


@contextlib.contextmanager
def source_only() -> Iterator[None]:
    """Within the block, checks read projects' files only: nothing is imported, no interpreter
    started (a sweep from HTTP is checked so, its signature checks limited to what the source
    settles)."""
    token = _SOURCE_ONLY.set(True)
    try:
        yield
    finally:
        _SOURCE_ONLY.reset(token)


def reading_source_only() -> bool:
    """Whether :func:`source_only` is in force."""
    return _SOURCE_ONLY.get()


def python_entry(entry: str) -> tuple[str, str] | None:
    """``(module, name)`` of a ``module:name`` entry; ``None`` for anything else (a command template)."""
    entry = entry.strip()
    if not _PYTHON_ENTRY.match(entry):
        return None
    module, _, name = entry.partition(":")
    return module, name


def defines_class(root: Path, module: str, name: str) -> bool:
    """Whether ``module`` of the project folder defines a class ``name`` at its top level."""
    tree = _module_tree(root, module)
    return tree is not None and any(isinstance(n, ast.ClassDef) and n.name == name for n in tree.body)


def _module_tree(root: Path, module: str) -> ast.Module | None:
    base = root.joinpath(*module.split("."))
    for file in (base.with_suffix(".py"), base / "__init__.py"):
        if file.is_file():
            try:
                return ast.parse(file.read_text(encoding="utf-8"), str(file))
            except (SyntaxError, UnicodeDecodeError, ValueError):
                return None  # the import will report it, with the line
    return None


def module_defines(root: Path, module: str, name: str) -> bool | None:
    """Whether ``module`` (a file of the project folder) defines ``name``, read without importing.

    ``None`` when the source cannot tell: no such file in the folder (an installed module),
    unparsable, or names made at run time (``import *``, module ``__getattr__``).
    """
    tree = _module_tree(root, module)
    if tree is None:
        return None
    defined: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                defined.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
    if "__getattr__" in defined or "globals" in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}:
        return None
    return name.split(".")[0] in defined


def module_exists(root: Path, module: str) -> bool:
    """Whether ``module`` is a file or package of the project folder."""
    base = root.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def source_parameters(root: Path, module: str, name: str) -> list[inspect.Parameter] | None:
    """The parameters of function ``name`` of ``module``, read from its source without importing it.

    Importing a project just to read its signature costs what its imports cost (Braket's are
    seconds), in the process that validates. ``None`` unless the source settles it: one plain,
    undecorated top-level ``def name`` that nothing else at top level rebinds.
    """
    tree = _module_tree(root, module)
    if tree is None:
        return None
    names = [_top_level_names(node) for node in tree.body]
    if any("*" in n or "__getattr__" in n or "globals" in n for n in names) or _calls_globals(tree):
        return None
    if not _imports_found(tree, root):
        return None  # let the import report what is missing, as it would in the worker
    bound = [node for node, n in zip(tree.body, names, strict=True) if name in n]
    if len(bound) != 1 or not isinstance(bound[0], ast.FunctionDef) or bound[0].decorator_list:
        return None
    args = bound[0].args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    kinds: list[inspect._ParameterKind] = [inspect.Parameter.POSITIONAL_ONLY] * len(args.posonlyargs)
    kinds += [inspect.Parameter.POSITIONAL_OR_KEYWORD] * len(args.args)
    params = [_parameter(a, k, d) for a, k, d in zip(positional, kinds, defaults, strict=True)]
    if args.vararg is not None:
        params.append(_parameter(args.vararg, inspect.Parameter.VAR_POSITIONAL, None))
    params += [
        _parameter(a, inspect.Parameter.KEYWORD_ONLY, d)
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    if args.kwarg is not None:
        params.append(_parameter(args.kwarg, inspect.Parameter.VAR_KEYWORD, None))
    return params


def external_imports(root: Path, module: str) -> list[str]:
    """The installed modules ``module`` imports at its top level (not the project's own files).

    A worker imports them before forking its pool, so that its children share them.
    """
    tree = _module_tree(root, module)
    if tree is None:
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    own_or_stdlib = lambda n: module_exists(root, n) or n in sys.stdlib_module_names or n == "__future__"  # noqa: E731
    return [n for n in dict.fromkeys(names) if not own_or_stdlib(n.split(".")[0])]


def _imports_found(tree: ast.Module, root: Path) -> bool:
    """Whether every top-level package the module imports is the project's own or installed."""
    tops = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return all(module_exists(root, top) or _installed(top) for top in tops)


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # e.g. a module in sys.modules without a spec
        return False


def _calls_globals(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "globals" for n in ast.walk(tree))


def _top_level_names(node: ast.stmt) -> set[str]:
    """Names a top-level statement binds (``*`` for a star import), nested blocks included."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            names |= {"*" if a.name == "*" else (a.asname or a.name).split(".")[0] for a in sub.names}
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
    return names


def _parameter(arg: ast.arg, kind: inspect._ParameterKind, default: ast.expr | None) -> inspect.Parameter:
    annotation = ast.unparse(arg.annotation) if arg.annotation is not None else inspect.Parameter.empty
    value = inspect.Parameter.empty if default is None else ast.unparse(default)
    return inspect.Parameter(arg.arg, kind, default=value, annotation=annotation)
