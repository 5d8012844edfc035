"""How a sweep file describes one project. Owned by the adapters; embedded in the sweep config."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Resource = Literal["local_cpu", "braket_sim", "braket_qpu"]


class ProjectSpec(BaseModel):
    """One project of a sweep. ``path`` is resolved against the sweep file's folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: Path
    entry: str | None = Field(None, description="module:function, module:Class or a command template")
    kind: Literal["auto", "callable", "class", "command", "circuit"] = "auto"
    resource: Resource = "local_cpu"
    device: str | None = Field(None, description="local:sv, local:dm or a Braket device ARN")
    fixed: dict[str, Any] = Field(default_factory=dict, description="parameters passed unchanged to every run")
    metrics: dict[str, str] = Field(default_factory=dict, description="output metric name -> field path")
    timeout: float | None = Field(None, gt=0, description="seconds before a run is stopped")
