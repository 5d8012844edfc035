"""Shared fixtures of the adapter tests."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters import ProjectAdapter, adapt_project
from adapters.environment import STATE_DIR_ENV
from core.project import ProjectSpec


@pytest.fixture(scope="session", autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One state folder per test session: virtualenvs are built once for the whole session."""
    path = tmp_path_factory.mktemp("state")
    old = os.environ.get(STATE_DIR_ENV)
    os.environ[STATE_DIR_ENV] = str(path)
    yield path
    if old is None:
        os.environ.pop(STATE_DIR_ENV, None)
    else:
        os.environ[STATE_DIR_ENV] = old


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Write a throwaway project: ``make_project(name, {"run.py": source, ...}) -> folder``."""

    def make(name: str, files: dict[str, str]) -> Path:
        root = tmp_path / name
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
            if rel.endswith(".sh"):
                path.chmod(0o755)
        return root

    return make


@pytest.fixture
def adapter_for() -> Callable[..., ProjectAdapter]:
    """``adapter_for(root, entry=..., **spec_fields)``: the adapter of a spec written inline."""

    def make(root: Path, **fields: Any) -> ProjectAdapter:
        spec = ProjectSpec.model_validate(
            {"name": fields.pop("name", root.name), "path": str(root), **fields}
        )
        return adapt_project(root, spec)

    return make


def sweep_file(folder: Path, text: str, *projects: str) -> Path:
    """``folder/s.yaml`` holding ``text``, beside an empty folder for each of ``projects``."""
    for name in projects:
        (folder / name).mkdir(exist_ok=True)
    path = folder / "s.yaml"
    path.write_text(text)
    return path
