"""``pip install .`` gives a working install: build the wheel, install it (not editable) into a
fresh virtualenv and run a real sweep from a folder outside the repository.

The new virtualenv takes its dependencies from the running one (a ``.pth`` line), so nothing is
downloaded; the orchestrator's own code and data can only come from the wheel: the repository
is not on ``sys.path`` and the sweep runs elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pandas as pd
import yaml

from tests.conftest import ROOT

PACKAGES = ("core", "orchestrator", "workers", "adapters", "analysis")
NOT_SHIPPED = (".git", ".venv", "build", "dist", "results", ".orchestrator", "__pycache__", "*.egg-info")


def _build_wheel(tmp_path: Path) -> Path:
    # From a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED, "*.pyc", ".*_cache"))
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, source],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("quantum_orchestrator-*.whl")
    return wheel


def _package_files() -> set[str]:
    """Every file the packages hold in the repository (code and data)."""
    files = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.add(path.relative_to(ROOT).as_posix())
    return files


def _fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
    )
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    # dependencies only: a plain path line does not run the editable-install hook of this repo
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    return venv


def test_wheel_ships_every_package_and_nothing_else(tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(_build_wheel(tmp_path)).namelist())
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == set(PACKAGES), "only the five packages: never tests, examples or benchmarks"
    missing = sorted(_package_files() - names)
    assert not missing, f"files of the packages missing from the wheel: {missing}"
    assert "orchestrator/braket/prices.yaml" in names


def test_installed_wheel_runs_a_sweep_outside_the_repo(tmp_path: Path) -> None:
    venv = _fresh_venv(tmp_path, _build_wheel(tmp_path))
    outside = tmp_path / "elsewhere"
    shutil.copytree(ROOT / "examples" / "projects" / "bell", outside / "projects" / "bell")
    sweep = yaml.safe_load((ROOT / "examples" / "sweeps" / "quickstart.yaml").read_text())
    sweep["projects"][0]["path"] = "projects/bell"
    sweep["parameters"] = {"noise": {"start": 0.0, "stop": 0.2, "num": 3}, "shots": [200]}
    (outside / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("ORCHESTRATOR_")}

    where = subprocess.run(
        [
            venv / "bin" / "python",
            "-c",
            "import core.config, orchestrator, orchestrator.braket.prices as p, workers.tasks; p.load_price_table(); print(orchestrator.__file__)",
        ],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), "imported from the wheel, not the repository"

    run = subprocess.run(
        [venv / "bin" / "orchestrator", "run", "sweep.yaml", "--workers", "1"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = pd.concat(pd.read_parquet(f) for f in (outside / "results").rglob("*.parquet"))
    assert len(rows) == 3 and set(rows["status"]) == {"completed"}, rows
    assert rows["metric.p_correlated"].between(0, 1).all()
