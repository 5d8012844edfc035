"""Projects in their own interpreters: a named one, or a virtualenv built from their requirements.

A virtualenv is keyed by the hash of the requirements file (and the Python version), built once
per machine under ``$ORCHESTRATOR_STATE_DIR/envs`` (default ``.orchestrator/envs``) and shared by
every project with the same file. An ``fcntl`` lock makes concurrent workers wait for one build
instead of racing; a marker file written last tells a finished build from a half-built one left
by a killed worker, which is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tomllib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from adapters.process import run_process
from core.errors import ConfigurationError
from core.locks import host_lock
from core.project import ProjectSpec

STATE_DIR_ENV = "ORCHESTRATOR_STATE_DIR"
MARKER = ".orchestrator-env.json"
REQUIREMENT_FILES = ("requirements.txt", "pyproject.toml")


def default_envs_dir() -> Path:
    """``$ORCHESTRATOR_STATE_DIR/envs``, else ``.orchestrator/envs`` under the working directory."""
    return (Path(os.environ.get(STATE_DIR_ENV, ".orchestrator")) / "envs").resolve()


@dataclass(frozen=True)
class Environment:
    """An interpreter a project runs with.

    Attributes:
        python: the interpreter.
        location: the virtualenv folder, or ``None`` for an interpreter the project named.
        built: True when the call that returned it built the virtualenv.
    """

    python: Path
    location: Path | None = None
    built: bool = False

    def variables(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment variables for a subprocess, with this interpreter first on ``PATH``."""
        env = dict(os.environ if base is None else base)
        env.pop("PYTHONHOME", None)
        env["PATH"] = f"{self.python.parent}{os.pathsep}{env.get('PATH', '')}"
        if self.location is not None:
            env["VIRTUAL_ENV"] = str(self.location)
        return env


class EnvironmentManager:
    """Finds or builds the interpreter of each project.

    Args:
        envs_dir: where virtualenvs live; see :func:`default_envs_dir`.
        build_timeout: seconds a build may take before it is killed.
    """

    def __init__(self, envs_dir: Path | None = None, *, build_timeout: float = 1800.0) -> None:
        self.envs_dir = envs_dir or default_envs_dir()
        self.build_timeout = build_timeout

    def requirements_file(self, spec: ProjectSpec, root: Path) -> Path | None:
        """The file an environment is built from: declared, or found in the project folder."""
        if spec.requirements is False or spec.python:
            return None
        if spec.requirements:
            path = root / spec.requirements
            if not path.is_file():
                raise ConfigurationError(
                    f"project '{spec.name}': requirements file {path} {_missing(path)}; "
                    f"fix 'requirements' (relative to the project folder)"
                )
            return path
        for name in REQUIREMENT_FILES:
            path = root / name
            if path.is_file() and (name != "pyproject.toml" or _pyproject_dependencies(path)):
                return path
        return None

    def for_project(self, spec: ProjectSpec, root: Path) -> Environment | None:
        """The project's environment, built if needed; ``None`` means the worker's own interpreter."""
        if spec.python:
            python = Path(spec.python) if Path(spec.python).is_absolute() else root / spec.python
            if not (python.is_file() and os.access(python, os.X_OK)):
                what = _missing(python) if not python.is_file() else "is not executable"
                raise ConfigurationError(
                    f"project '{spec.name}': interpreter {python} {what}; fix 'python' (an "
                    "interpreter file, absolute or relative to the project folder)"
                )
            return Environment(python)
        requirements = self.requirements_file(spec, root)
        return None if requirements is None else self.ensure(requirements, project=spec.name)

    def is_ready(self, spec: ProjectSpec, root: Path) -> bool:
        """Whether :meth:`for_project` would answer without building a virtualenv."""
        requirements = self.requirements_file(spec, root)
        return requirements is None or (self.envs_dir / self.key(requirements) / MARKER).is_file()

    def key(self, requirements: Path) -> str:
        """Hash of the file's content and the Python version: equal keys share one virtualenv."""
        digest = hashlib.sha256(requirements.read_bytes())
        digest.update(f"\0{requirements.name}\0{platform.python_version()}".encode())
        return digest.hexdigest()[:16]

    def ensure(self, requirements: Path, *, project: str = "?") -> Environment:
        """The virtualenv for ``requirements``, built under a lock unless already there."""
        location = self.envs_dir / self.key(requirements)
        python = location / "bin" / "python"
        if (location / MARKER).is_file():
            return Environment(python, location)
        with self._locked(location.name):
            if (location / MARKER).is_file():  # another worker built it while we waited
                return Environment(python, location)
            self._build(location, requirements, project)
        return Environment(python, location, built=True)

    def _locked(self, name: str) -> AbstractContextManager[None]:
        return host_lock(self.envs_dir / f"{name}.lock")

    def _build(self, location: Path, requirements: Path, project: str) -> None:
        if location.exists():
            shutil.rmtree(location)  # a build interrupted before its marker
        if requirements.name == "pyproject.toml":
            install = _pyproject_dependencies(requirements)
        else:
            install = ["-r", str(requirements)]
        steps = [
            # The worker's pip installs into the new env (pip --python): no pip inside it to bootstrap.
            [sys.executable, "-m", "venv", "--without-pip", str(location)],
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(location / "bin" / "python"),
                "install",
                "--no-input",
                "--disable-pip-version-check",
                *install,
            ],
        ]
        for argv in steps if install else steps[:1]:
            outcome = run_process(argv, cwd=requirements.parent, timeout=self.build_timeout)
            if outcome.returncode != 0 or outcome.timed_out:
                shutil.rmtree(location, ignore_errors=True)
                why = "timed out" if outcome.timed_out else (outcome.stderr or outcome.stdout).strip()[-1500:]
                raise ConfigurationError(
                    f"project '{project}': could not build its environment from {requirements} "
                    f"({why}); fix the file (try: pip install -r {requirements.name} in a fresh virtualenv)"
                )
        (location / MARKER).write_text(
            json.dumps(
                {
                    "requirements": str(requirements),
                    "key": location.name,
                    "python": platform.python_version(),
                    "built_at": datetime.now(UTC).isoformat(),
                    "installed": install,
                },
                indent=1,
            )
        )


def _pyproject_dependencies(path: Path) -> list[str]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML ({exc}); fix it") from exc
    return list(data.get("project", {}).get("dependencies", []))


def _missing(path: Path) -> str:
    """What is at ``path`` instead of the file a setting names."""
    return "is a folder, not a file" if path.is_dir() else "does not exist"
