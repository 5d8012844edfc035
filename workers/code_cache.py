"""The per-host cache of projects' code: each archive fetched once per host, checked, unpacked.

``<state_dir>/code/<digest>/`` holds one unpacked archive. A process that needs a digest takes
the host-wide lock of that digest (``flock``), so the worker's pool processes fetch it once
between them; it unpacks into a temporary folder and renames it into place (atomic: a reader
sees all of it or none). A copy is checked against its manifest the first time each process
uses it, so a corrupted copy is fetched again. Past ``max_bytes`` the least recently used
copies go, never one used in the last ``keep_recent_s``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from core.archive import MANIFEST, PREFIX, ArchiveMismatch, unpack, verify
from core.errors import ConfigurationError
from core.locks import host_lock

log = logging.getLogger(__name__)

TOUCH_EVERY_S = 30.0  # how often a process in use marks a copy as recently used
Fetch = Callable[[str], bytes]  # digest -> archive bytes (raises TransientError when unreachable)


class CodeCache:
    """Unpacked archives under ``root``, shared by every process of this host that uses ``root``.

    Args:
        root: the cache folder (``<state_dir>/code``).
        fetch: reads an archive's bytes from the store by digest.
        max_bytes: the cache's size past which least recently used copies are removed.
        keep_recent_s: a copy used this recently is never removed (a run may be using it); longer
            than ``TOUCH_EVERY_S``, since a process in use marks its copy only that often.
    """

    def __init__(
        self, root: Path, fetch: Fetch, *, max_bytes: int = 2 * 1024**3, keep_recent_s: float = 600.0
    ) -> None:
        self.root, self.fetch = Path(root), fetch
        self.max_bytes, self.keep_recent_s = max_bytes, keep_recent_s
        # digest -> when this process last verified or touched it, and its folder
        self._checked: dict[str, tuple[float, Path]] = {}

    def path(self, code_version: str) -> Path:
        """The folder holding ``code_version``'s files, fetched and unpacked on first use.

        Raises:
            ConfigurationError: the store twice gave bytes that do not hash to the name.
            TransientError: (from ``fetch``) the store is unreachable; retry later.
        """
        digest = code_version.removeprefix(PREFIX)
        now = time.monotonic()
        last = self._checked.get(digest)
        # the hot path of every run: a copy used in the last TOUCH_EVERY_S is never pruned
        # (keep_recent_s is longer), so it is neither stat'ed nor touched again until then
        if last is not None and now - last[0] < TOUCH_EVERY_S:
            return last[1]
        folder = self.root / digest
        if last is not None and folder.is_dir():
            _touch(folder)
            self._checked[digest] = (now, folder)
            return folder
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked(digest):
            if folder.is_dir() and not verify(folder, digest):
                log.warning("cached code %s is corrupted: fetching it again", digest[:12])
                shutil.rmtree(folder, ignore_errors=True)
            if not folder.is_dir():
                self._install(digest, folder)
            self._checked[digest] = (now, folder)
            _touch(folder)
        self.prune(keep=digest)
        return folder

    def cached(self) -> list[str]:
        """Digests held here, most recently used first (for the worker's heartbeat)."""
        entries = [p for p in self.root.glob("*") if p.is_dir() and (p / MANIFEST).exists()]
        return [p.name for p in sorted(entries, key=_last_used, reverse=True)]

    def prune(self, keep: str = "") -> None:
        """Remove least recently used copies until the cache is under ``max_bytes``."""
        copies = [p for p in self.root.glob("*") if p.is_dir() and (p / MANIFEST).exists()]
        sizes = {p: _size(p) for p in copies}
        total = sum(sizes.values())
        now = time.time()
        for folder in sorted(copies, key=_last_used):
            if total <= self.max_bytes:
                break
            if folder.name == keep or now - _last_used(folder) < self.keep_recent_s:
                continue
            with self._locked(folder.name):
                shutil.rmtree(folder, ignore_errors=True)
            total -= sizes[folder]
            self._checked.pop(folder.name, None)

    def _install(self, digest: str, folder: Path) -> None:
        for attempt in (1, 2):
            data = self.fetch(digest)
            staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=self.root))
            try:
                unpack(data, digest, staging)
                os.replace(staging, folder)
                log.info("code %s fetched (%d bytes) into %s", digest[:12], len(data), folder)
                return
            except ArchiveMismatch as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if attempt == 2:
                    raise ConfigurationError(
                        f"the code archive {digest[:12]} fetched twice does not match its hash ({exc}); "
                        f"submit the sweep again to store its code afresh"
                    ) from exc
                log.warning("code archive %s did not match its hash: fetching it again", digest[:12])
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise

    def _locked(self, digest: str) -> AbstractContextManager[None]:
        return host_lock(self.root / f".{digest}.lock")


def _touch(folder: Path) -> None:
    try:
        os.utime(folder / MANIFEST)
    except OSError:
        pass


def _last_used(folder: Path) -> float:
    try:
        return (folder / MANIFEST).stat().st_mtime
    except OSError:
        return 0.0


def _size(folder: Path) -> int:
    try:
        return sum(int(e["size"]) for e in json.loads((folder / MANIFEST).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return 0
