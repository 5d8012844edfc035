"""The adapter kinds, in one registry: which adapter a project entry needs.

A kind is a :class:`~adapters.base.ProjectAdapter` subclass that declares its ``kind``, how a
``kind: auto`` project is told to be one (its options block, :meth:`~ProjectAdapter.detects`)
and its static check (:meth:`~ProjectAdapter.check_statically`). Adding one: write the class,
list it in ``ADAPTERS``, and add its name (and options block, if any) to the sweep file's
format in :mod:`core.project`; ``tests/adapters/test_kinds.py`` checks the two lists agree.
"""

from __future__ import annotations

from pathlib import Path

from adapters.base import ProjectAdapter
from adapters.callable import CallableAdapter, ClassAdapter
from adapters.circuit import CircuitAdapter
from adapters.command import CommandAdapter
from core.errors import ConfigurationError
from core.project import ProjectSpec

#: every kind, in the order ``kind: auto`` asks them; the catch-all for Python entries is last
ADAPTERS: tuple[type[ProjectAdapter], ...] = (CircuitAdapter, CommandAdapter, ClassAdapter, CallableAdapter)
#: kind -> its adapter class
KINDS: dict[str, type[ProjectAdapter]] = {cls.kind: cls for cls in ADAPTERS}


def detect_kind(spec: ProjectSpec, root: Path) -> str:
    """The kind of ``spec``: the one it declares, else the one whose options it gives, else the
    first that :meth:`~ProjectAdapter.detects` its entry (``module:name`` is a Python entry,
    a class when the module's source defines one; anything else a command template).

    Raises:
        ConfigurationError: ``kind: auto`` and neither options nor an entry to tell it by.
    """
    if spec.kind != "auto":
        return spec.kind
    for cls in ADAPTERS:
        if cls.options_field and getattr(spec, cls.options_field) is not None:
            return cls.kind
    for cls in ADAPTERS:
        if spec.entry and cls.detects(spec.entry, root):
            return cls.kind
    raise ConfigurationError(
        f"project '{spec.name}': no 'entry'; set it to module:function, module:Class "
        f"or a command template, or give circuit.build for a circuit project"
    )
