"""Content-addressed project archives: one folder state, one name and one blob, on any host."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from core.archive import ArchiveMismatch, pack, unpack, verify


def _project(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "run.py").write_text("def run(x):\n    return {'y': x}\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "tool.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "tool.sh").chmod(0o755)
    return root


def _names(folder: Path, **kw) -> list[str]:
    return [e.path for e in pack(folder, **kw).entries]


def test_the_name_ignores_mtimes_and_creation_order(tmp_path: Path) -> None:
    a = _project(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    for name in ["tool.sh", "pkg/__init__.py", "run.py"]:  # another order, other mtimes
        (b / name).parent.mkdir(exist_ok=True)
        shutil.copy(a / name, b / name)
    os.utime(b / "run.py", (1, 1))
    first, second = pack(a), pack(b)
    assert first.digest == second.digest and first.data == second.data
    assert first.code_version == "sha256:" + first.digest and len(first.digest) == 64


@pytest.mark.parametrize(
    "change",
    [
        lambda p: (p / "run.py").write_text("def run(x):\n    return {'y': x + 1}\n"),
        lambda p: (p / "run.py").chmod(0o755),
        lambda p: (p / "run.py").rename(p / "main.py"),
        lambda p: (p / "pkg" / "extra.txt").write_text(""),
    ],
    ids=["bytes", "mode", "path", "new empty file"],
)
def test_any_change_of_path_mode_or_bytes_changes_the_name(tmp_path: Path, change) -> None:
    folder = _project(tmp_path / "p")
    before = pack(folder).digest
    change(folder)
    assert pack(folder).digest != before


def test_what_is_left_out(tmp_path: Path) -> None:
    folder = _project(tmp_path / "p")
    for junk in [
        ".git/HEAD",
        "__pycache__/run.cpython-311.pyc",
        "results/sweep=x/a.parquet",
        ".orchestrator/redis.sock.log",
        "myenv/lib/site.py",
        "data/big.bin",
        "notes.log",
    ]:
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_text("x")
    (folder / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")  # a virtualenv by its marker
    (folder / ".gitignore").write_text("*.log\n")
    assert _names(folder, exclude=["data/"]) == [".gitignore", "pkg/__init__.py", "run.py", "tool.sh"]
    assert "data/big.bin" in _names(folder)


def test_unpack_round_trip_and_verify(tmp_path: Path) -> None:
    archive = pack(_project(tmp_path / "p"))
    dest = tmp_path / "copy"
    unpack(archive.data, archive.code_version, dest)
    assert (dest / "run.py").read_text().startswith("def run")
    assert os.access(dest / "tool.sh", os.X_OK) and not os.access(dest / "run.py", os.X_OK)
    assert verify(dest, archive.digest)
    (dest / "__pycache__").mkdir()  # what running the project leaves beside it is allowed
    assert verify(dest, archive.digest)
    (dest / "run.py").write_text("corrupted")
    assert not verify(dest, archive.digest)
    assert not verify(dest, "0" * 64)


def test_unpack_refuses_bytes_that_do_not_hash_to_the_name(tmp_path: Path) -> None:
    archive = pack(_project(tmp_path / "p"))
    with pytest.raises(ArchiveMismatch, match="does not hash"):
        unpack(archive.data, "f" * 64, tmp_path / "a")
    with pytest.raises(ArchiveMismatch, match="cannot be read"):
        unpack(archive.data[: len(archive.data) // 2], archive.digest, tmp_path / "b")


@pytest.mark.parametrize("name", ["../evil.py", "/etc/evil.py"])
def test_unpack_refuses_members_outside_the_folder(tmp_path: Path, name: str) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ArchiveMismatch, match="unsafe member"):
        unpack(raw.getvalue(), "0" * 64, tmp_path / "dest")
    assert not (tmp_path / "evil.py").exists()
