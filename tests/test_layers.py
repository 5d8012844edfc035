"""The layers, checked on every import statement of the packages (those inside functions too;
not those under ``if TYPE_CHECKING:``, which never run).

* no import cycle between modules;
* ``orchestrator`` never imports ``workers``, except the entry point that starts them (the CLI);
* ``adapters`` and ``analysis`` import none of ``workers``, Celery, kombu or Redis;
* only ``orchestrator.store`` imports ``redis`` (one door to Redis), and only
  ``orchestrator.dispatch`` and ``workers`` import Celery or kombu.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("orchestrator", "workers", "adapters", "analysis")
ENTRY_POINTS = {"orchestrator.cli"}  # they start workers, so they may import them


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except inside ``if TYPE_CHECKING:`` (imports for annotations only never run)."""
    for node in ast.iter_child_nodes(tree):
        test = node.test if isinstance(node, ast.If) else None
        if test is not None and "TYPE_CHECKING" in ast.unparse(test):
            yield from (n for child in node.orelse for n in [child, *_nodes(child)])
            continue
        yield node
        yield from _nodes(node)


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every module name ``module`` imports, resolved against the project's modules where possible."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in MODULES else base


def _graph() -> dict[str, set[str]]:
    return {m: {i for i in _imported(m, p) if i in MODULES and i != m} for m, p in MODULES.items()}


def _external(module: str) -> set[str]:
    return {name.split(".")[0] for name in _imported(module, MODULES[module])}


def test_the_checker_sees_imports_inside_functions() -> None:
    # orchestrator.cli imports workers.app inside the `worker` command only
    assert "workers.app" in _graph()["orchestrator.cli"]


def test_no_import_cycles() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("orchestrator")))
def test_orchestrator_does_not_import_workers(module: str) -> None:
    if module in ENTRY_POINTS:
        return
    assert "workers" not in _external(module), f"{module} imports workers"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.split(".")[0] in ("adapters", "analysis")))
def test_adapters_and_analysis_know_nothing_of_the_queue(module: str) -> None:
    assert not _external(module) & {"workers", "celery", "kombu", "redis"}, module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_store_imports_redis(module: str) -> None:
    if module == "orchestrator.store" or module.startswith("orchestrator.store."):
        return
    assert "redis" not in _external(module), f"{module} imports redis: go through orchestrator.store"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("orchestrator")))
def test_only_dispatch_talks_to_celery(module: str) -> None:
    if module == "orchestrator.dispatch" or module in ENTRY_POINTS:
        return
    assert not _external(module) & {"celery", "kombu"}, (
        f"{module} imports Celery: go through orchestrator.dispatch"
    )
