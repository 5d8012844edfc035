"""Import project code in a long-lived worker without projects trampling on each other's modules.

Two projects may both have a ``run.py`` (or a ``helpers.py`` that their entry imports). Inside
:func:`project_imports` only the active project's folder is on ``sys.path`` and only its modules
are in ``sys.modules``; on exit its modules are parked in a per-project cache and put back the
next time, so each project is imported once per worker process and re-imported when its
sources change.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import itertools
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

_SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules"}
_parked: dict[str, dict[str, ModuleType]] = {}
_stamps: dict[str, tuple[int, int]] = {}
_scans: dict[str, tuple[float, set[str]]] = {}  # root -> (when scanned, its top-level module names)
RESCAN_SECONDS = 1.0
# sys.modules and sys.path are process-wide: one project at a time in a threaded pool
_lock = threading.RLock()


def _source_stamp(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*.py") if not (_SKIP_DIRS & set(p.relative_to(root).parts))]
    return len(files), max((p.stat().st_mtime_ns for p in files), default=0)


def forget(root: Path) -> None:
    """Import ``root``'s modules afresh next time, whatever the last scan saw: its code is known
    to be another version now (``code: shared``: the folder was edited in place)."""
    key = str(_resolved(root))
    with _lock:
        _scans.pop(key, None)
        _stamps.pop(key, None)
        _parked.pop(key, None)
        importlib.invalidate_caches()


def _scan(root: Path) -> tuple[bool, set[str]]:
    """Whether ``root``'s sources changed since last seen, and its top-level module names.

    Scanning a project's tree cost more than running a no-op project, so a scan is reused for
    ``RESCAN_SECONDS``: an edit is picked up by the runs that start after that.
    """
    key, now = str(root), time.monotonic()
    seen = _scans.get(key)
    if seen is not None and now - seen[0] < RESCAN_SECONDS:
        return False, seen[1]
    stamp = _source_stamp(root)
    names = {p.stem for p in root.glob("*.py")}
    names |= {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    _scans[key] = (now, names)
    changed = _stamps.get(key) != stamp
    _stamps[key] = stamp
    return changed, names


def _is_under(module: ModuleType, root: Path) -> bool:
    files = [getattr(module, "__file__", None), *list(getattr(module, "__path__", None) or [])]
    return any(_file_under(file, root) for file in files if file)


@functools.lru_cache(maxsize=4096)
def _file_under(file: str, root: Path) -> bool:
    # cached: resolving every module's path on every run cost more than a no-op project's run
    with contextlib.suppress(ValueError, OSError):
        Path(file).resolve().relative_to(root)
        return True
    return False


@functools.lru_cache(maxsize=256)
def _resolved(root: Path) -> Path:
    return root.resolve()


def _installed(module: ModuleType) -> bool:
    file = getattr(module, "__file__", None)
    if not file:
        return True  # built-in or namespace: leave it alone
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return any(str(Path(file).resolve()).startswith(str(Path(p).resolve())) for p in prefixes)


def _added_since(count: int, last: str | None) -> list[str]:
    """The modules imported since ``sys.modules`` had ``count`` entries, ``last`` the newest.

    The dict keeps insertion order, so they are its newest entries unless one was removed
    meanwhile (then all are returned, to be checked). Copying ``sys.modules`` into a set before
    and after each run cost more than the rest of a short experiment's overhead.
    """
    extra = len(sys.modules) - count
    if extra >= 0:
        newest = list(itertools.islice(reversed(sys.modules), extra + 1))
        if (newest[extra] if extra < len(newest) else None) == last:
            return newest[:extra]
    return list(sys.modules)


@contextlib.contextmanager
def project_imports(root: Path) -> Iterator[None]:
    """Make ``root`` the project whose modules ``import`` finds, for the duration of the block."""
    root = _resolved(root)
    key = str(root)
    with _lock:
        changed, local = _scan(root)
        if changed:
            _parked.pop(key, None)  # sources changed: import afresh
            importlib.invalidate_caches()
        own = _parked.setdefault(key, {})
        stashed = {}
        # A submodule is only ever imported with its package: no top-level name, nothing to scan for.
        if any(name in sys.modules for name in local):  # isdisjoint would walk all of sys.modules
            stashed = {
                name: sys.modules.pop(name)
                for name, mod in list(sys.modules.items())
                if name.split(".")[0] in local and not _is_under(mod, root) and not _installed(mod)
            }
        sys.modules.update(own)
        count, last = len(sys.modules), next(reversed(sys.modules), None)
        saved_path = list(sys.path)
        sys.path.insert(0, key)
        try:
            yield
        finally:
            sys.path[:] = saved_path
            for name in {*_added_since(count, last), *own}:
                mod = sys.modules.get(name)
                if mod is not None and (mod is own.get(name) or _is_under(mod, root)):
                    own[name] = sys.modules.pop(name)
            sys.modules.update(stashed)
