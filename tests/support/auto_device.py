"""A sweep of the GHZ fixture on ``device: auto``, for the tests of the device choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

GHZ = Path(__file__).resolve().parents[1] / "fixtures" / "projects" / "ghz_circuit"


def auto_sweep(parameters: dict[str, Any], **project: Any) -> dict[str, Any]:
    """A grid of the GHZ circuit over ``parameters`` (100 shots unless they say otherwise), its
    device chosen per shape; ``project`` adds to the project's entry (devices, resource...)."""
    entry = {
        "name": "ghz",
        "path": str(GHZ),
        "device": "auto",
        "circuit": {"build": "ghz:build", "analyze": "ghz:analyze"},
    }
    return {
        "name": "auto",
        "projects": [{**entry, **project}],
        "parameters": {"shots": [100], **parameters},
        "adaptive_sampling": False,
    }
