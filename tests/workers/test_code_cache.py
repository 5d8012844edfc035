"""The per-host code cache: one fetch per host per archive, checked copies, bounded size."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from core.archive import pack
from core.errors import ConfigurationError
from workers.code_cache import CodeCache


def _archive(tmp_path: Path, text: str = "def run(x):\n    return {'y': x}\n"):
    folder = tmp_path / f"src-{abs(hash(text))}"
    folder.mkdir()
    (folder / "run.py").write_text(text)
    return pack(folder)


class CountingStore:
    """Archives by digest; every read appends a line to a file (shared across processes)."""

    def __init__(self, log: Path, archives) -> None:
        self.log, self.blobs = log, {a.digest: a.data for a in archives}

    def __call__(self, digest: str) -> bytes:
        with open(self.log, "a") as out:
            out.write(f"{os.getpid()} {digest}\n")
        return self.blobs[digest]

    def reads(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


def _use(root: str, store: CountingStore, version: str, barrier) -> str:
    barrier.wait()  # all four ask at once
    return (CodeCache(Path(root), store).path(version) / "run.py").read_text()


def test_four_processes_of_one_host_fetch_an_archive_once(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    store = CountingStore(tmp_path / "reads.log", [archive])
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Manager().Barrier(4)
    with ctx.Pool(4) as pool:
        texts = pool.starmap(_use, [(str(tmp_path / "cache"), store, archive.code_version, barrier)] * 4)
    assert set(texts) == {"def run(x):\n    return {'y': x}\n"}
    assert store.reads() == 1


def test_a_corrupted_copy_is_fetched_again(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    store = CountingStore(tmp_path / "reads.log", [archive])
    folder = CodeCache(tmp_path / "cache", store).path(archive.code_version)
    (folder / "run.py").write_text("import os; os.system('rm -rf /')")  # a disk error, or worse
    again = CodeCache(tmp_path / "cache", store).path(archive.code_version)  # a new process
    assert again == folder and (again / "run.py").read_text().startswith("def run")
    assert store.reads() == 2


def test_a_store_that_twice_gives_the_wrong_bytes_fails_with_a_configuration_error(tmp_path: Path) -> None:
    right, wrong = _archive(tmp_path), _archive(tmp_path, "other = 1\n")
    calls = []

    def fetch(digest: str) -> bytes:
        calls.append(digest)
        return wrong.data

    with pytest.raises(ConfigurationError, match="does not match its hash"):
        CodeCache(tmp_path / "cache", fetch).path(right.code_version)
    assert len(calls) == 2
    assert not (tmp_path / "cache" / right.digest).exists()
    assert [p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_past_its_size_the_least_recently_used_copy_goes(tmp_path: Path) -> None:
    archives = [_archive(tmp_path, f"v = {i}\n" + "#" * 1000) for i in range(3)]
    store = CountingStore(tmp_path / "reads.log", archives)
    cache = CodeCache(tmp_path / "cache", store, max_bytes=2500, keep_recent_s=0)
    for a in archives:
        cache.path(a.code_version)
    assert cache.cached() == [archives[2].digest, archives[1].digest]
