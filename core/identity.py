"""Stable identities: which experiments are "the same", and what reproduces them."""

from __future__ import annotations

import hashlib
import json
import math
import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.project import ProjectSpec

KEY_PACKAGES = ("numpy", "scipy", "amazon-braket-sdk", "amazon-braket-default-simulator")
_SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".mypy_cache", "node_modules"}
#: the identity scheme given to new sweeps. 1: project, code version, parameters, repeat, resource,
#: device. 2 adds the project's options and the seed its runs receive. A sweep keeps the scheme
#: it was registered with, so an upgrade never renames the experiments (and the paid Braket
#: submissions keyed by them) of a sweep in flight.
IDENTITY_SCHEME = 2
#: project options that cannot change a run's numbers, left out of its identity: its name, its
#: folder (whose content is the code version), its queue and device (identity fields of their
#: own; with ``device: auto`` the device chosen per shape is that field, not the candidates or
#: the stored choice), the failover devices (a row names the device that ran it), how long a run
#: may take, how it is isolated, the dry run of ``check`` and how the code reaches the workers
_NOT_RESULTS = frozenset(
    {
        "name",
        "path",
        "resource",
        "device",
        "devices",
        "require_qpu",
        "device_choice",
        "failover",
        "timeout",
        "isolation",
        "check_parameters",
        "code",
        "exclude",
    }
)


def canonical(value: Any) -> Any:
    """Parameters in a form whose JSON is stable: floats to 12 significant digits, sorted keys."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
            return float(int(value))
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return str(value)


def _digest(payload: Any, size: int = 16) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def experiment_id(
    project: str,
    code_version: str,
    parameters: dict[str, Any],
    repeat: int,
    resource: str,
    device: str | None = None,
    *,
    options: str | None = None,
    seed: int | None = None,
) -> str:
    """Same work -> same id, whatever the sweep: a result is reused only for the same id.

    Every input that can change a result is in it: the project's code, the parameters, the
    repeat, the queue, the device asked for (a result measured on one QPU is never reused for a
    sweep that asks for another; a failover's result keeps the id of the device asked for, its
    row says which ran it), the project's ``options`` (:func:`project_options`: entry, kind,
    command template, metrics mapping, ``fixed``, ...) and the sweep's ``seed`` when the run
    receives the seed derived from it (:func:`experiment_seed`, a function of that seed and of
    the fields above). ``options`` is None only for sweeps registered under identity scheme 1.
    """
    payload: dict[str, Any] = {
        "p": project,
        "v": code_version,
        "x": canonical(parameters),
        "r": repeat,
        "q": resource,
    }
    if device:
        payload["d"] = device
    if options is not None:
        payload["o"] = options
    if seed is not None:
        payload["s"] = seed
    return _digest(payload)


def project_options(spec: ProjectSpec) -> str:
    """A digest of the project options that can change a run's result: everything of the spec
    but what ``_NOT_RESULTS`` lists. A new option is part of the identity unless listed there."""
    options = spec.model_dump(mode="json", by_alias=True, exclude=set(_NOT_RESULTS))
    return _digest(canonical(options))


def experiment_seed(sweep_seed: int, project: str, parameters: dict[str, Any], repeat: int) -> int:
    """The seed of one repeat of one point: the same whatever the code version, sweep or machine.

    Derived from the sweep's ``seed``, so changing it draws new numbers for every run; each
    repeat of a point gets its own, so repeats are independent samples. 31 bits: every
    generator takes it (``random.seed``, ``numpy.random.seed``, ``default_rng``, C ``int``).
    """
    digest = _digest({"s": sweep_seed, "p": project, "x": canonical(parameters), "r": repeat})
    return int(digest, 16) & 0x7FFFFFFF


def reproducibility_hash(exp_id: str, seed: int) -> str:
    return _digest({"e": exp_id, "s": seed, "py": platform.python_version(), "pk": package_versions()})


@cache
def package_versions() -> dict[str, str]:
    out = {}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def code_version(path: str | Path) -> str:
    """The project's git commit (with ``+dirty`` and a diff hash if modified), else a content hash."""
    path = Path(path)
    try:
        top = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if top.returncode == 0 and Path(top.stdout.strip()).resolve() == path.resolve():
            head = subprocess.run(
                ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            diff = subprocess.run(
                ["git", "-C", str(path), "diff", "HEAD"], capture_output=True, timeout=10
            ).stdout
            return f"git:{head[:12]}" + (f"+{hashlib.sha256(diff).hexdigest()[:8]}" if diff else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "sha:" + content_hash(path)


def content_hash(path: Path) -> str:
    """Hash of the project's source files (a project inside a larger git checkout is hashed too)."""
    h = hashlib.sha256()
    files = (
        [path]
        if path.is_file()
        else sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and not (_SKIP_DIRS & set(p.relative_to(path).parts))
            and p.suffix not in {".pyc", ".parquet", ".log"}
        )
    )
    for file in files:
        h.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        h.update(file.read_bytes())
    return h.hexdigest()[:12]
