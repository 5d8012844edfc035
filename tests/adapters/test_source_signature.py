"""A function's signature read from its source (no import) says what importing it would."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from adapters import adapt_project
from adapters.runner import describe, describe_function
from adapters.source import external_imports, source_parameters
from core.project import ProjectSpec

MODULE = """
from __future__ import annotations

import json
from typing import Any, Mapping

import mod_helper_zq


def plain(x, y=2, *, z: int = 3, report=None):
    return {}


def star(a, /, b, *args, c, **kwargs):
    return {}


def takes_mapping(cfg: dict[str, Any]):
    return {}


def takes_abc_mapping(options: Mapping):
    return {}


def seeded(params, seed):
    return {}


def decorated_(f):
    return f


@decorated_
def decorated(x):
    return {}


def rebound(x):
    return {}


rebound = decorated_(rebound)

if json:
    def conditional(x):
        return {}
"""

SHAPES = ["plain", "star", "takes_mapping", "takes_abc_mapping", "seeded"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "mod.py").write_text(MODULE)
    (tmp_path / "mod_helper_zq.py").write_text("")
    return tmp_path


def _imported(root: Path, name: str):
    import sys

    spec = importlib.util.spec_from_file_location("mod_under_test", root / "mod.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(root))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("mod_helper_zq", None)  # found in sys.modules, it would look installed
    return getattr(module, name)


@pytest.mark.parametrize("name", SHAPES)
def test_source_and_import_agree(project: Path, name: str) -> None:
    params = source_parameters(project, "mod", name)
    assert params is not None
    assert describe_function(params, name) == describe(_imported(project, name))


@pytest.mark.parametrize("name", ["decorated", "rebound", "conditional", "nosuch"])
def test_what_the_source_cannot_settle_is_left_to_the_import(project: Path, name: str) -> None:
    assert source_parameters(project, "mod", name) is None


def test_a_missing_dependency_is_left_to_the_import(project: Path) -> None:
    (project / "mod_helper_zq.py").unlink()
    assert source_parameters(project, "mod", "plain") is None
    adapter = adapt_project(project, ProjectSpec(name="m", path=str(project), entry="mod:plain"))
    with pytest.raises(Exception, match="mod_helper_zq"):
        adapter.signature()


def test_a_star_import_is_left_to_the_import(project: Path) -> None:
    (project / "mod.py").write_text("from json import *\n\ndef run(x):\n    return {}\n")
    assert source_parameters(project, "mod", "run") is None


def test_validation_does_not_import_the_project(project: Path) -> None:
    (project / "slow.py").write_text("raise SystemExit('imported')\n\ndef run(x):\n    return {}\n")
    adapter = adapt_project(project, ProjectSpec(name="s", path=str(project), entry="slow:run"))
    assert adapter.signature().accepts == ["x"]


def test_external_imports_skip_the_stdlib_and_the_project(project: Path) -> None:
    (project / "dep.py").write_text(
        "import os\nimport numpy.linalg\nfrom scipy import stats\nimport mod_helper_zq\n"
    )
    assert external_imports(project, "dep") == ["numpy.linalg", "scipy"]
