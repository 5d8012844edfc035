"""Adapters run existing research projects unchanged. They know nothing of Celery."""

from __future__ import annotations

from pathlib import Path

from adapters.base import CompatibilityReport, ProjectAdapter, StandardizedMetrics
from adapters.spec import ProjectSpec

__all__ = ["CompatibilityReport", "ProjectAdapter", "ProjectSpec", "StandardizedMetrics", "adapt_project"]


def adapt_project(project_path: str | Path, spec: ProjectSpec) -> ProjectAdapter:
    """Return the adapter for ``spec``, whose files live at ``project_path``."""
    from adapters.callable import CallableAdapter

    return CallableAdapter(spec, Path(project_path))
