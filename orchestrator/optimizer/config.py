"""Optimizer options of a sweep file (``optimizer:`` block)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class OptimizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    startup_points: int = Field(8, ge=1, description="space-filling points run before the model decides")
    coverage_share: float = Field(0.2, ge=0, le=1, description="share of runs kept space-filling")
    acquisition: str = "ei"
