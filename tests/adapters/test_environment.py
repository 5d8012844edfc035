"""Project interpreters: a named one, or a virtualenv built once per requirements file."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters import ProjectAdapter, adapt_project
from adapters.environment import MARKER, EnvironmentManager
from core.errors import ConfigurationError
from core.models import ExperimentStatus
from core.project import ProjectSpec

# `uncertainties` is small, pure Python, on PyPI, and not a dependency of the orchestrator.
DEPENDENCY = "uncertainties"
PROJECT = {
    "requirements.txt": f"{DEPENDENCY}>=3.1\n",
    "model.py": """
        import sys
        from uncertainties import ufloat


        def run(x):
            print("running in", sys.prefix)
            value = ufloat(x, 0.1) * 2
            return {"value": value.nominal_value, "stderr": value.std_dev}
    """,
}


def test_the_dependency_is_not_in_the_worker() -> None:
    with pytest.raises(ModuleNotFoundError):
        __import__(DEPENDENCY)


def test_env_is_built_once_and_reused(make_project: Callable[..., Path], tmp_path: Path) -> None:
    root = make_project("withreq", PROJECT)
    manager = EnvironmentManager(tmp_path / "envs")
    first = manager.ensure(root / "requirements.txt")
    marker = (first.location / MARKER).read_text()
    second = manager.ensure(root / "requirements.txt")
    assert first.built and not second.built
    assert second.location == first.location and (second.location / MARKER).read_text() == marker
    assert json.loads(marker)["key"] == first.location.name
    out = subprocess.run([str(first.python), "-c", f"import {DEPENDENCY}"], capture_output=True)
    assert out.returncode == 0, out.stderr


def test_concurrent_workers_build_one_env(make_project: Callable[..., Path], tmp_path: Path) -> None:
    root = make_project("withreq", PROJECT)
    manager = EnvironmentManager(tmp_path / "envs")
    built: list[bool] = []
    threads = [
        threading.Thread(target=lambda: built.append(manager.ensure(root / "requirements.txt").built))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(built) == [False, False, True]  # the flock made two of them wait and reuse


def test_same_file_shares_an_env_and_a_changed_file_gets_a_new_one(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    a = make_project("a", {"requirements.txt": "# nothing\n"})
    b = make_project("b", {"requirements.txt": "# nothing\n"})
    manager = EnvironmentManager(tmp_path / "envs")
    assert manager.ensure(a / "requirements.txt").location == manager.ensure(b / "requirements.txt").location
    (b / "requirements.txt").write_text("# something else\n")
    assert manager.ensure(b / "requirements.txt").built


def test_a_half_built_env_is_rebuilt(make_project: Callable[..., Path], tmp_path: Path) -> None:
    root = make_project("a", {"requirements.txt": "# nothing\n"})
    manager = EnvironmentManager(tmp_path / "envs")
    location = manager.envs_dir / manager.key(root / "requirements.txt")
    location.mkdir(parents=True)  # a worker killed mid-build left this, without a marker
    env = manager.ensure(root / "requirements.txt")
    assert env.built and env.python.exists() and (location / MARKER).is_file()


def test_unbuildable_requirements_are_a_configuration_error(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_project("bad", {"requirements.txt": "this is not a requirement ===\n"})
    manager = EnvironmentManager(tmp_path / "envs")
    with pytest.raises(ConfigurationError, match="could not build its environment") as info:
        manager.ensure(root / "requirements.txt", project="bad")
    assert "'bad'" in str(info.value)
    assert not any(p.is_dir() for p in manager.envs_dir.iterdir())  # nothing half-built left behind


def test_pyproject_dependencies_are_installed(make_project: Callable[..., Path], tmp_path: Path) -> None:
    root = make_project(
        "pp",
        {"pyproject.toml": f'[project]\nname = "pp"\nversion = "0"\ndependencies = ["{DEPENDENCY}>=3.1"]\n'},
    )
    manager = EnvironmentManager(tmp_path / "envs")
    spec = ProjectSpec(name="pp", path=root, entry="m:f")
    env = manager.for_project(spec, root)
    assert env is not None and env.built
    assert json.loads((env.location / MARKER).read_text())["installed"] == [f"{DEPENDENCY}>=3.1"]


def test_a_pyproject_without_dependencies_needs_no_env(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_project("pp", {"pyproject.toml": '[project]\nname = "pp"\nversion = "0"\n'})
    assert (
        EnvironmentManager(tmp_path).for_project(ProjectSpec(name="pp", path=root, entry="m:f"), root) is None
    )


def test_requirements_false_opts_out(make_project: Callable[..., Path], tmp_path: Path) -> None:
    root = make_project("opt", {"requirements.txt": "numpy\n"})
    spec = ProjectSpec(name="opt", path=root, entry="m:f", requirements=False)
    assert EnvironmentManager(tmp_path).for_project(spec, root) is None


def test_state_dir_comes_from_the_environment_variable(state_dir: Path) -> None:
    assert EnvironmentManager().envs_dir == (state_dir / "envs").resolve()


def test_project_runs_in_its_own_env_built_once(make_project: Callable[..., Path], tmp_path: Path) -> None:
    root = make_project("withreq", PROJECT)
    spec = ProjectSpec(name="withreq", path=root, entry="model:run")
    envs = tmp_path / "envs"  # fresh, so "built" is this test's doing whatever ran before
    results = [
        adapt_project(root, spec, environments=EnvironmentManager(envs)).execute_with_parameters({"x": x})
        for x in (1.0, 2.0, 3.0)
    ]
    assert [r.status for r in results] == [ExperimentStatus.COMPLETED] * 3, results[0].error_message
    assert [r.metrics["value"] for r in results] == [2.0, 4.0, 6.0]
    assert results[0].metrics["stderr"] == pytest.approx(0.2)
    # one adapter per experiment, as the worker makes them: only the first one built the env
    assert [r.extra["environment_built"] for r in results] == [True, False, False]
    # the log names the environment by its key only: no path of the worker's machine in results
    key = Path(results[0].extra["environment"]).name
    assert f"running in .../{key}" in results[0].log and str(envs) not in results[0].log


def test_named_interpreter(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    root = make_project("named", {"m.py": "import sys\ndef f():\n    return {'v': sys.version_info[0]}\n"})
    result = adapter_for(root, entry="m:f", python=sys.executable).execute_with_parameters({})
    assert result.metrics == {"v": 3.0} and result.extra["environment"] == sys.executable
    result = adapter_for(root, entry="m:f", python="bin/nope").execute_with_parameters({})
    assert result.error_class == "configuration" and "fix 'python'" in result.error_message


def test_missing_dependency_in_the_worker_says_add_requirements(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    root = make_project("noreq", {"model.py": PROJECT["model.py"]})
    result = adapter_for(root, entry="model:run").execute_with_parameters({"x": 1})
    assert result.error_class == "configuration"
    assert f"imports '{DEPENDENCY}'" in result.error_message and "requirements.txt" in result.error_message
