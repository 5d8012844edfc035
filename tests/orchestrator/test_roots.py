"""The rules for what a sweep from HTTP may run (``orchestrator/roots.py``), one module's unit
tests; the refusals over a real ``serve`` are in ``tests/web/test_roots.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.config import validate_sweep
from core.errors import InputError
from orchestrator.roots import HttpRules, OutsideRoots, check_code, resolve_projects


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "root" / "lab" / "proj"
    project.mkdir(parents=True)
    (project / "model.py").write_text("from helpers import fit\n\n\ndef run(x):\n    return {'y': x}\n")
    (project / "helpers.py").write_text("def fit(x):\n    return {'y': x}\n")
    (project / "run.sh").write_text("#!/bin/sh\necho '{\"y\": 1}'\n")
    (project / "run.sh").chmod(0o755)
    (tmp_path / "secret.txt").write_text("numpy\n")
    return tmp_path / "root"


def _check(root: Path, **project: Any) -> None:
    data = {
        "name": "t",
        "projects": [{"name": "p", "path": "lab/proj", "entry": "model:run", **project}],
        "parameters": {"x": [1]},
        "adaptive_sampling": False,
    }
    rules = HttpRules([root])
    resolve_projects(data, rules, "<body>")
    check_code(validate_sweep(data, source="<body>"), rules, "<body>")


@pytest.mark.parametrize(
    "project",
    [
        {},
        {"entry": "helpers:fit"},
        {"entry": "model:fit"},  # imported from a module of the project
        {"entry": "./run.sh {x}"},
        {"entry": "{project_dir}/run.sh --x {x}"},
        {"entry": "python model.py --x {x}", "command": {"output_file": "{run_dir}/out.json"}},
    ],
)
def test_the_projects_own_code_is_accepted(root: Path, project: dict[str, Any]) -> None:
    _check(root, **project)


@pytest.mark.parametrize(
    ("project", "field"),
    [
        ({"requirements": "../../../secret.txt"}, "requirements"),
        ({"entry": "model:run", "python": "/usr/bin/python3"}, "python"),
        ({"entry": "json:loads"}, "entry"),
        ({"entry": "yaml:safe_load"}, "entry"),  # installed, not the project's
        ({"entry": "echo {x}"}, "entry"),
        ({"entry": "python -m http.server {x}"}, "entry"),
        ({"entry": "./run.sh {x} ; rm -rf ~"}, "entry"),
        (
            {"entry": "python model.py {x}", "command": {"output_file": "{run_dir}/../../x.json"}},
            "command.output_file",
        ),
    ],
)
def test_code_from_outside_the_project_is_refused(root: Path, project: dict[str, Any], field: str) -> None:
    with pytest.raises(OutsideRoots) as refused:
        _check(root, **project)
    assert refused.value.field == f"projects[0].{field}" and refused.value.fix
    assert str(root) not in str(refused.value)


def test_requirements_that_pull_in_files_outside_are_refused(root: Path) -> None:
    project = root / "lab" / "proj"
    (project / "requirements.txt").write_text("numpy\n-r ../../../secret.txt\n")
    with pytest.raises(OutsideRoots, match="line 2 of 'requirements.txt'"):
        _check(root)
    (project / "requirements.txt").unlink()
    (project / "pyproject.toml").write_text('[project]\ndependencies = ["x @ file:///etc/x"]\n')
    with pytest.raises(OutsideRoots, match="dependency 1"):
        _check(root)


def test_a_module_linked_from_outside_is_refused(root: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.py").write_text("def run(x):\n    return {}\n")
    (root / "lab" / "proj" / "linked.py").symlink_to(tmp_path / "elsewhere.py")
    with pytest.raises(OutsideRoots, match="not a file of the project folder"):
        _check(root, entry="linked:run")


def test_relative_paths_climbing_out_of_a_sweep_folder_are_found_below_the_roots(root: Path) -> None:
    data = {"projects": [{"path": "../lab/proj"}, {"path": "lab/proj"}, {"path": "../proj"}]}
    resolve_projects(data, HttpRules([root]), "<body>")
    assert {p["path"] for p in data["projects"]} == {str((root / "lab" / "proj").resolve())}
    with pytest.raises(OutsideRoots):
        resolve_projects({"projects": [{"path": "../.."}]}, HttpRules([root]), "<body>")
    with pytest.raises(InputError, match="does not exist"):
        resolve_projects({"projects": [{"path": "../nowhere"}]}, HttpRules([root]), "<body>")
