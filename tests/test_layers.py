"""The layers, checked on every import statement of the packages (those inside functions too;
not those under ``if TYPE_CHECKING:``, which never run).

From the bottom up, a module may import only its own layer's package and the layers below::

    core                      the leaf: errors, models, identity, spaces, settings, protocol, sweep file
    adapters | analysis       each imports only core, and never the other
    orchestrator              coordinator, store, optimizer, Braket, API
    workers                   the Celery app and its tasks
    orchestrator.cli          the program: it starts workers, so it may import anything; nothing imports it

Beside the direction: no import cycle between modules, and none between packages (a package is
a folder: ``orchestrator.store`` and ``orchestrator.braket`` are two). And the doors to the
services: only ``orchestrator.store`` imports ``redis``; only ``orchestrator.dispatch``,
``workers`` and the CLI import Celery or kombu; core, adapters and analysis import neither.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "adapters", "analysis", "orchestrator", "workers")
#: lowest first; a module belongs to the longest prefix that names it
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("adapters", "analysis"),
    ("orchestrator",),
    ("workers",),
    ("orchestrator.cli",),
)


def modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = modules()


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except inside ``if TYPE_CHECKING:`` (imports for annotations only never run)."""
    for node in ast.iter_child_nodes(tree):
        test = node.test if isinstance(node, ast.If) else None
        if test is not None and "TYPE_CHECKING" in ast.unparse(test):
            yield from (n for child in node.orelse for n in [child, *_nodes(child)])
            continue
        yield node
        yield from _nodes(node)


def imported(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every module name ``module`` imports, resolved against ``known`` modules where possible."""
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
                yield candidate if candidate in known else base


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    return {m: {i for i in imported(m, p, known) if i in known and i != m} for m, p in known.items()}


def _external(module: str) -> set[str]:
    return {name.split(".")[0] for name in imported(module, MODULES[module], MODULES)}


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, the package that places it) for ``module``."""
    best = max(
        (
            (i, name)
            for i, names in enumerate(LAYERS)
            for name in names
            if module == name or module.startswith(f"{name}.")
        ),
        key=lambda hit: len(hit[1]),
    )
    return best


def wrong_way(edges: dict[str, set[str]]) -> list[str]:
    """Every import that climbs to a higher layer or crosses to a sibling package of its layer."""
    out = []
    for module, targets in sorted(edges.items()):
        level, home = layer_of(module)
        for target in sorted(targets):
            target_level, target_home = layer_of(target)
            if target_level > level or (target_level == level and target_home != home):
                out.append(f"{module} -> {target}")
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in edges.get(node, ()):
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
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_graph(edges: dict[str, set[str]], known: dict[str, Path]) -> dict[str, set[str]]:
    """Imports between packages (folders); the CLI counts as a package of its own, the program."""

    def package(module: str) -> str:
        if module == "orchestrator.cli" or module.startswith("orchestrator.cli."):
            return "orchestrator.cli"
        return module if known[module].name == "__init__.py" else module.rpartition(".")[0]

    out: dict[str, set[str]] = {}
    for module, targets in edges.items():
        for target in targets:
            a, b = package(module), package(target)
            if a != b:
                out.setdefault(a, set()).add(b)
    return out


GRAPH = graph(MODULES)


def test_the_checker_sees_imports_inside_functions() -> None:
    # the CLI imports workers.app inside the `worker` command only
    assert any(
        target == "workers.app"
        for module in GRAPH
        if module.startswith("orchestrator.cli")
        for target in GRAPH[module]
    )


def test_no_module_cycles() -> None:
    assert not cycles(GRAPH), f"import cycles: {cycles(GRAPH)}"


def test_no_package_cycles() -> None:
    packages = package_graph(GRAPH, MODULES)
    assert not cycles(packages), f"package cycles: {cycles(packages)}"


def test_every_import_goes_down_the_layers() -> None:
    assert not wrong_way(GRAPH), "imports against the layers:\n" + "\n".join(wrong_way(GRAPH))


def test_the_checks_fail_on_a_reverse_import(tmp_path: Path) -> None:
    """A synthetic tree with one import the wrong way (core -> orchestrator) and one cycle."""
    files = {
        "core/__init__.py": "",
        "core/errors.py": "from orchestrator.store import Store\n",  # the leaf climbs
        "adapters/__init__.py": "from core.errors import Error\n",
        "analysis/__init__.py": "def f():\n    import adapters\n",  # siblings, inside a function
        "orchestrator/__init__.py": "",
        "orchestrator/store/__init__.py": "from orchestrator.coordinator import run\n",
        "orchestrator/coordinator.py": "from orchestrator.store import Store\nfrom core import errors\n",
        "orchestrator/cli/__init__.py": "import workers.app\n",  # the program may
        "workers/__init__.py": "",
        "workers/app.py": "from orchestrator import coordinator\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    known = modules(tmp_path)
    edges = graph(known)
    assert wrong_way(edges) == ["analysis -> adapters", "core.errors -> orchestrator.store"]
    assert cycles(edges) == [["core.errors", "orchestrator.coordinator", "orchestrator.store"]]
    assert cycles(package_graph(edges, known)) == [["core", "orchestrator", "orchestrator.store"]]


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.split(".")[0] in ("core", "adapters", "analysis"))
)
def test_core_adapters_and_analysis_know_nothing_of_the_queue(module: str) -> None:
    assert not _external(module) & {"workers", "celery", "kombu", "redis"}, module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_store_imports_redis(module: str) -> None:
    if module == "orchestrator.store" or module.startswith("orchestrator.store."):
        return
    assert "redis" not in _external(module), f"{module} imports redis: go through orchestrator.store"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("orchestrator")))
def test_only_dispatch_talks_to_celery(module: str) -> None:
    if module == "orchestrator.dispatch" or layer_of(module)[1] == "orchestrator.cli":
        return
    assert not _external(module) & {"celery", "kombu"}, (
        f"{module} imports Celery: go through orchestrator.dispatch"
    )
