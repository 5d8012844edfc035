"""Which adapter a project entry needs: declared by ``kind``, or detected where unambiguous."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from adapters.spec import ProjectSpec
from orchestrator.errors import ConfigurationError

_PYTHON_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def detect_kind(spec: ProjectSpec, root: Path) -> str:
    """``callable``, ``class``, ``command`` or ``circuit`` for ``spec``.

    ``kind: auto`` follows the options given (``circuit``, ``command``, ``class``), then the
    entry's shape: ``module:name`` is a Python entry, anything else a command template. Whether
    ``name`` is a class is read from the module's source (without importing it, so a project
    with its own interpreter is detected the same way).
    """
    if spec.kind != "auto":
        return spec.kind
    for kind, options in (("circuit", spec.circuit), ("command", spec.command), ("class", spec.class_)):
        if options is not None:
            return kind
    if not spec.entry:
        raise ConfigurationError(
            f"project '{spec.name}': no 'entry'; set it to module:function, module:Class "
            f"or a command template, or give circuit.build for a circuit project"
        )
    if not _PYTHON_ENTRY.match(spec.entry.strip()):
        return "command"
    module, _, name = spec.entry.strip().partition(":")
    return "class" if _defines_class(root, module, name) else "callable"


def _defines_class(root: Path, module: str, name: str) -> bool:
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
