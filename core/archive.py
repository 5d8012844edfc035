"""A project's code as one content-addressed archive: what a worker on another host runs.

The archive's name is the SHA-256 of its normalized contents: every file's path, mode
(executable or not) and bytes, in path order. Neither mtimes nor the order the file system lists
files in change it, and the tar itself is written the same way every time (no mtimes, owners or
gzip timestamp), so one folder state gives one name and one blob, on any host.

Left out: ``.git``, virtualenvs, caches, the orchestrator's results and state folders, what the
project's ``.gitignore`` excludes, and the project's own ``exclude`` patterns (gitignore syntax).

The digest is also the code version of every experiment of the sweep (its identity, its
reproducibility hash and each row's ``code_version``): the code that ran is the code that was
validated at submit, whatever happens to the folder afterwards.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

import pathspec

#: gitignore patterns never shipped, whatever the project says
ALWAYS_EXCLUDED = (
    ".git/",
    ".hg/",
    ".svn/",
    "__pycache__/",
    "*.py[cod]",
    ".venv/",
    "venv/",
    ".tox/",
    ".nox/",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    "node_modules/",
    ".orchestrator/",  # the state folder (embedded Redis, logs, the code cache)
    "results/",  # the default results folder
    ".DS_Store",
)
MANIFEST = ".orchestrator-manifest.json"  # in an unpacked copy: what it must hold, to verify it
PREFIX = "sha256:"


class ArchiveMismatch(ValueError):
    """An archive (or an unpacked copy) whose contents do not hash to the name it was asked for."""


@dataclass(frozen=True)
class Entry:
    """One file of an archive: its path (POSIX, relative), executable bit, size and SHA-256."""

    path: str
    executable: bool
    size: int
    sha256: str


@dataclass(frozen=True)
class Archive:
    """A packed project folder: its name at once, its bytes when asked for.

    Naming costs a SHA-256 per file; compressing costs more (0.1 s for 5 MB), and is wasted when
    the store holds the archive already, so :attr:`data` is built on first use, from the bytes
    read when the folder was named (never from the folder again: it may have changed since).

    Attributes:
        digest: the SHA-256 of the normalized contents (hex): the archive's name.
        entries: the files, in path order.
    """

    digest: str
    entries: tuple[Entry, ...]
    contents: tuple[bytes, ...] = field(repr=False)

    @cached_property
    def data(self) -> bytes:
        """The deterministic ``tar.gz`` bytes (no mtimes, owners or gzip timestamp)."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry, content in zip(self.entries, self.contents, strict=True):
                info = tarfile.TarInfo(entry.path)
                info.size, info.mode, info.mtime = entry.size, 0o755 if entry.executable else 0o644, 0
                tar.addfile(info, io.BytesIO(content))
        # level 1: source compresses nearly as well, and data that does not compress costs little
        return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)

    @property
    def code_version(self) -> str:
        """The name rows and identities carry: ``sha256:<hex>``."""
        return PREFIX + self.digest

    @property
    def size(self) -> int:
        """Bytes of the files before compression."""
        return sum(e.size for e in self.entries)

    def largest(self, n: int = 5) -> list[Entry]:
        return sorted(self.entries, key=lambda e: e.size, reverse=True)[:n]


def digest_of(entries: Iterable[Entry]) -> str:
    """The archive name for these files: SHA-256 over path, mode and content hash, in path order."""
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e.path):
        h.update(f"{e.path}\0{'x' if e.executable else '-'}\0{e.sha256}\n".encode())
    return h.hexdigest()


def project_files(folder: Path, exclude: Iterable[str] = ()) -> list[Path]:
    """The files of ``folder`` that ship, in path order (see the module docstring)."""
    patterns = list(ALWAYS_EXCLUDED)
    ignore = folder / ".gitignore"
    if ignore.is_file():
        patterns += ignore.read_text(errors="replace").splitlines()
    patterns += list(exclude)
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    out: list[Path] = []
    for root, dirs, files in os.walk(folder):
        rel_root = PurePosixPath(Path(root).relative_to(folder).as_posix())
        # prune excluded folders (and virtualenvs by their marker, whatever they are called)
        dirs[:] = sorted(
            d
            for d in dirs
            if not spec.match_file(f"{rel_root / d}/".removeprefix("./"))
            and not (Path(root, d) / "pyvenv.cfg").exists()
            and not Path(root, d).is_symlink()
        )
        for name in files:
            rel = (rel_root / name).as_posix().removeprefix("./")
            path = Path(root, name)
            if not spec.match_file(rel) and path.is_file():  # is_file: no sockets, no broken links
                out.append(path)
    return sorted(out, key=lambda p: p.relative_to(folder).as_posix())


def pack(folder: str | Path, exclude: Iterable[str] = ()) -> Archive:
    """Pack ``folder`` (see the module docstring); a single file is packed as itself."""
    folder = Path(folder)
    files = [folder] if folder.is_file() else project_files(folder, exclude)
    base = folder.parent if folder.is_file() else folder
    entries: list[Entry] = []
    contents: list[bytes] = []
    for path in files:
        data = path.read_bytes()
        executable = bool(path.stat().st_mode & stat.S_IXUSR)
        entries.append(
            Entry(path.relative_to(base).as_posix(), executable, len(data), hashlib.sha256(data).hexdigest())
        )
        contents.append(data)
    return Archive(digest_of(entries), tuple(entries), tuple(contents))


def unpack(data: bytes, digest: str, dest: Path) -> list[Entry]:
    """Unpack archive ``data`` into the new folder ``dest`` and check it is ``digest``.

    Only regular files with relative paths are taken (a crafted archive cannot write outside
    ``dest``). ``dest`` gets a manifest, so a cached copy can be checked later (:func:`verify`).

    Raises:
        ArchiveMismatch: the contents do not hash to ``digest`` (or the data is not an archive).
    """
    digest = digest.removeprefix(PREFIX)
    entries: list[Entry] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or member.name.startswith("/") or ".." in parts or not parts:
                    raise ArchiveMismatch(f"archive {digest[:12]} holds an unsafe member {member.name!r}")
                reader = tar.extractfile(member)
                content = reader.read() if reader else b""
                target = dest.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                executable = bool(member.mode & 0o100)
                target.chmod(0o755 if executable else 0o644)
                entries.append(
                    Entry(member.name, executable, len(content), hashlib.sha256(content).hexdigest())
                )
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ArchiveMismatch(f"archive {digest[:12]} cannot be read: {exc}") from exc
    if digest_of(entries) != digest:
        raise ArchiveMismatch(f"archive {digest[:12]} does not hash to its name")
    (dest / MANIFEST).write_text(json.dumps([e.__dict__ for e in entries]))
    return entries


def verify(folder: Path, digest: str) -> bool:
    """Whether an unpacked copy still holds exactly the archive's files (extra files are allowed:
    a project may write beside its code, and Python writes ``__pycache__``)."""
    try:
        entries = [Entry(**e) for e in json.loads((folder / MANIFEST).read_text())]
        if digest_of(entries) != digest.removeprefix(PREFIX):
            return False
        for e in entries:
            path = folder / e.path
            if hashlib.sha256(path.read_bytes()).hexdigest() != e.sha256:
                return False
            if bool(path.stat().st_mode & stat.S_IXUSR) != e.executable:
                return False
    except (OSError, ValueError, TypeError):
        return False
    return True
