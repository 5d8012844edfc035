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
    base = root.joinpath(*module.split("."))
    for file in (base.with_suffix(".py"), base / "__init__.py"):
        if file.is_file():
            try:
                tree = ast.parse(file.read_text(), str(file))
            except (SyntaxError, UnicodeDecodeError):
                return False  # the import will report it, with the line
            return any(isinstance(node, ast.ClassDef) and node.name == name for node in tree.body)
    return False
