"""Import project code in a long-lived worker without projects trampling on each other's modules.

Two projects may both have a ``run.py`` (or a ``helpers.py`` that their entry imports). Inside
:func:`project_imports` only the active project's folder is on ``sys.path`` and only its modules
are in ``sys.modules``; on exit its modules are parked in a per-project cache and put back the
next time, so each project is imported once per worker process and re-imported when its
sources change.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

_SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules"}
_parked: dict[str, dict[str, ModuleType]] = {}
_stamps: dict[str, tuple[int, int]] = {}
# sys.modules and sys.path are process-wide: one project at a time in a threaded pool
_lock = threading.RLock()


def _source_stamp(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*.py") if not (_SKIP_DIRS & set(p.relative_to(root).parts))]
    return len(files), max((p.stat().st_mtime_ns for p in files), default=0)


def _local_names(root: Path) -> set[str]:
    names = {p.stem for p in root.glob("*.py")}
    names |= {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return names


def _is_under(module: ModuleType, root: Path) -> bool:
    files = [getattr(module, "__file__", None), *list(getattr(module, "__path__", None) or [])]
    for file in files:
        if file:
            with contextlib.suppress(ValueError, OSError):
                Path(file).resolve().relative_to(root)
                return True
    return False


def _installed(module: ModuleType) -> bool:
    file = getattr(module, "__file__", None)
    if not file:
        return True  # built-in or namespace: leave it alone
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return any(str(Path(file).resolve()).startswith(str(Path(p).resolve())) for p in prefixes)


@contextlib.contextmanager
def project_imports(root: Path) -> Iterator[None]:
    """Make ``root`` the project whose modules ``import`` finds, for the duration of the block."""
    root = root.resolve()
    key = str(root)
    with _lock:
        stamp = _source_stamp(root)
        if _stamps.get(key) != stamp:
            _parked.pop(key, None)  # sources changed: import afresh
            _stamps[key] = stamp
        own = _parked.setdefault(key, {})
        local = _local_names(root)
        stashed = {name: sys.modules.pop(name) for name, mod in list(sys.modules.items())
                   if name.split(".")[0] in local and not _is_under(mod, root) and not _installed(mod)}
        sys.modules.update(own)
        before = set(sys.modules)
        saved_path = list(sys.path)
        sys.path.insert(0, key)
        importlib.invalidate_caches()
        try:
            yield
        finally:
            sys.path[:] = saved_path
            for name in (set(sys.modules) - before) | set(own):
                mod = sys.modules.get(name)
                if mod is not None and _is_under(mod, root):
                    own[name] = sys.modules.pop(name)
            sys.modules.update(stashed)
