"""Static checks of the codebase, run with the tests so CI enforces them: formatting, lint, types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: the whole product is typed: every package mypy checks, with 0 errors
TYPED = ["core", "adapters", "analysis", "orchestrator", "workers"]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_code_is_formatted_and_lint_clean() -> None:
    fmt = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, f"run `ruff format .`:\n{fmt.stdout}{fmt.stderr}"
    lint = _run(str(BIN / "ruff"), "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_product_type_checks() -> None:
    result = _run(str(BIN / "mypy"), *TYPED)
    assert result.returncode == 0, result.stdout + result.stderr
