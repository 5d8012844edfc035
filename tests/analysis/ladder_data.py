"""A synthetic fidelity-ladder sweep written through core's ResultStore, with a known bias per rung.

Rows are built as the workers build them (:func:`core.rows.result_row`), plus the ladder's
``fidelity`` column: every point on rung 0, the best-looking ones promoted rung by rung, a promoted
experiment's parameters carrying ``fidelity: k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.models import ExperimentResult
from core.results import ResultStore
from core.rows import result_row

QPU = "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1"
DM1 = "arn:aws:braket:::device/quantum-simulator/amazon/dm1"
GAMMAS = [0.2, 0.5, 0.8, 1.1, 1.4, 1.7]
BETAS = [0.1, 0.3, 0.5, 0.7]


@dataclass(frozen=True)
class Rung:
    device: str
    bias: float  # what this rung reads above the QPU, the same at every point
    points: int  # how many of the best points (by this rung's parent) run here
    cost: float  # per run
    tilt: float = 0.0  # what it reads above the QPU per unit of gamma past the peak: a misranking


LADDER = (
    Rung("local:dm", 0.04, len(GAMMAS) * len(BETAS), 0.0),
    Rung(DM1, 0.01, 12, 0.075),
    Rung(QPU, 0.0, 8, 3.0),
)


def truth(gamma: float, beta: float) -> float:
    """The value the QPU reads at a point, before its noise: one peak, at (1.1, 0.5)."""
    return 0.8 - 0.3 * (gamma - 1.1) ** 2 - 0.5 * (beta - 0.5) ** 2


def write_ladder_sweep(
    root: Path,
    sweep_id: str,
    *,
    ladder: tuple[Rung, ...] = LADDER,
    noise: float = 0.01,
    repeats: int = 1,
    seed: int = 0,
    on_ladder: bool = True,
) -> ResultStore:
    """Write the sweep's rows and ``sweep.json`` under ``root``; ``on_ladder=False`` writes the
    rung-0 rows of a plain sweep (no ``fidelity`` column)."""
    rng = np.random.default_rng(seed)
    store = ResultStore(root)
    points = [(g, b) for g in GAMMAS for b in BETAS]
    rows: list[dict[str, Any]] = []
    index = 0
    for k, rung in enumerate(ladder if on_ladder else ladder[:1]):
        if k:  # promote the parent rung's best points
            points = sorted(points, key=lambda p: -truth(*p))[: rung.points]
        for gamma, beta in points:
            for repeat in range(repeats):
                params: dict[str, Any] = {"gamma": gamma, "beta": beta, **({"fidelity": k} if k else {})}
                value = truth(gamma, beta) + rung.bias + rung.tilt * (gamma - 1.1) + rng.normal(0, noise)
                result = ExperimentResult(
                    experiment_id=f"e{index}",
                    project_name="qaoa",
                    parameters=params,
                    # a state fidelity: a metric named as the ladder's column, and a metric still
                    metrics={"cut": value, "energy": -2 * value + rng.normal(0, noise), "fidelity": 0.9},
                    cost=rung.cost,
                    sweep_id=sweep_id,
                    index=index,
                    repeat=repeat,
                    device=rung.device,
                    added=bool(k),
                    reproducibility_hash=f"h{index}",
                )
                row = result_row(result)
                if on_ladder:
                    row["fidelity"] = k
                rows.append(row)
                index += 1
    store.write_rows(sweep_id, rows)
    project: dict[str, Any] = {"name": "qaoa", "path": "projects/qaoa", "entry": "qaoa:run"}
    if on_ladder:
        project["fidelities"] = [{"device": r.device} for r in ladder]
    else:
        project["device"] = ladder[0].device
    sweep = {
        "name": "ladder" if on_ladder else "plain",
        "projects": [project],
        "parameters": {"gamma": GAMMAS, "beta": BETAS},
        "objectives": [{"metric": "cut", "goal": "maximize"}],
        "repeats": repeats,
        "adaptive_sampling": True,
    }
    store.write_effective_config(sweep_id, {"sweep": sweep, "code_versions": {}, "settings": {}})
    return store
