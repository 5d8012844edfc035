"""Adapters run existing research projects unchanged. They know nothing of Celery.

``adapt_project(path, spec).execute_with_parameters(params)`` is the whole contract with the
workers: it never raises for a failing project, it returns a FAILED ``ExperimentResult`` with a
classified error and a message that names the project and the fix.
"""

from __future__ import annotations

from pathlib import Path

from adapters.base import DeviceRunner, ProjectAdapter, StandardizedMetrics, UnusableAdapter
from adapters.contract import Check, CompatibilityReport, EntrySignature, ProjectTimeout
from adapters.environment import Environment, EnvironmentManager
from adapters.kinds import KINDS, detect_kind
from core.errors import ConfigurationError
from core.project import ProjectSpec

__all__ = [
    "Check",
    "CompatibilityReport",
    "DeviceRunner",
    "EntrySignature",
    "Environment",
    "EnvironmentManager",
    "ProjectAdapter",
    "ProjectSpec",
    "ProjectTimeout",
    "StandardizedMetrics",
    "adapt_project",
    "detect_kind",
]


def adapt_project(
    project_path: str | Path,
    spec: ProjectSpec,
    *,
    device_runner: DeviceRunner | None = None,
    environments: EnvironmentManager | None = None,
) -> ProjectAdapter:
    """Return the adapter for ``spec``, whose files live at ``project_path``.

    Args:
        project_path: the project folder (normally ``spec.path``).
        spec: the project's entry in the sweep file.
        device_runner: runs circuits on managed Braket devices (injected by the Braket worker).
        environments: finds or builds project interpreters; default under the state folder.

    Never raises for a misconfigured project: when the kind cannot be told (no entry), the
    adapter returned fails each run (and each check) with the reason.
    """
    root = Path(project_path)
    try:
        adapter = KINDS[detect_kind(spec, root)]
    except ConfigurationError as exc:
        return UnusableAdapter(spec, root, exc)
    return adapter(spec, root, environments=environments, device_runner=device_runner)
