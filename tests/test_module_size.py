"""No product module over ``MAX_LINES`` lines: a module that grows past it is split along its
seams (see how ``orchestrator/cli/`` and the coordinator's steps were), not trimmed to fit."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "adapters", "analysis", "orchestrator", "workers")
MAX_LINES = 500


def oversized(root: Path = ROOT, limit: int = MAX_LINES) -> list[str]:
    """``path: N lines`` of every module of the packages longer than ``limit`` lines, longest first."""
    lengths = {
        path.relative_to(root).as_posix(): len(path.read_text().splitlines())
        for package in PACKAGES
        for path in (root / package).rglob("*.py")
    }
    return [
        f"{path}: {n} lines" for path, n in sorted(lengths.items(), key=lambda item: -item[1]) if n > limit
    ]


def test_no_module_is_over_the_limit() -> None:
    found = oversized()
    assert not found, f"modules over {MAX_LINES} lines (split them along their seams):\n" + "\n".join(found)


def test_the_check_names_the_file_and_its_length(tmp_path: Path) -> None:
    (tmp_path / "orchestrator").mkdir()
    (tmp_path / "orchestrator" / "big.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "orchestrator" / "small.py").write_text("x = 1\n" * MAX_LINES)
    assert oversized(tmp_path) == [f"orchestrator/big.py: {MAX_LINES + 1} lines"]
