"""Experiment orchestration for quantum-computing research.

>>> from orchestrator import Orchestrator
>>> with Orchestrator() as orch:                       # embedded: private Redis + local workers
...     status = orch.run("examples/sweeps/quickstart.yaml")
...     frame = orch.results(status.execution_id)
"""

from __future__ import annotations

from typing import Any

__all__ = ["Orchestrator", "SweepConfiguration", "load_results", "load_sweep"]


def __getattr__(name: str) -> Any:  # lazy: importing the package must stay cheap for workers
    if name in ("Orchestrator", "load_results"):
        from orchestrator import api

        return getattr(api, name)
    if name in ("SweepConfiguration", "load_sweep"):
        from core import config

        return getattr(config, name)
    raise AttributeError(name)
