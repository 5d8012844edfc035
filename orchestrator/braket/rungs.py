"""A fidelity ladder before it runs: its rungs rise in cost, each managed rung takes the sweep's
circuits, and its price is an upper bound shown per rung.

The bound: every point runs on the first rung, and at most ``promote.max_share`` of them (0.2
by default) on each higher rung, each at the rung's shots (the points with the most shots where
the rung keeps the point's own). The promotion policy may promote fewer, never more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from core.errors import InputError
from core.models import Experiment
from core.plan import SweepPlan, run_parameters
from core.project import FIDELITY, ProjectSpec, PromoteSpec, is_managed
from orchestrator.braket.prices import PriceTable

#: what a rung's check spec reads shots from: no parameter has this name, so ``default_shots``
#: (set to the rung's shots) is what every circuit of the rung is checked with
_RUNG_SHOTS = "__rung_shots__"


@dataclass
class RungCost:
    """The bound on one rung of one project's ladder.

    Attributes:
        project: the project.
        rung: its index (0: every point).
        device: where the rung runs.
        shots: the rung's shots per task (None: each point's own).
        tasks: at most this many tasks.
        cost: USD for them, at most.
    """

    project: str
    rung: int
    device: str
    shots: int | None
    tasks: int = 0
    cost: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cost": round(self.cost, 6)}


def max_share(spec: ProjectSpec) -> float:
    return (spec.promote or PromoteSpec()).max_share


def check_rising(config: Any, prices: PriceTable, source: str) -> None:
    """Each rung of every ladder costs more per task than the one below it, at the rung's shots
    (the first point's where the rung keeps the point's own), by the price table's prices.

    Raises:
        InputError: naming the rung that does not cost more and what both cost.
    """
    first = config.space().point(0)
    for i, spec in enumerate(config.projects):
        if not spec.fidelities:
            continue
        if config.max_experiments is not None:
            # The first rung would spend the run budget before any point had earned a promotion,
            # and the sweep would end with none: the ladder's space is its budget instead.
            raise InputError(
                f"project '{spec.name}' climbs a fidelity ladder, and max_experiments would be spent "
                "on its first rung before any point could climb",
                source=source,
                field="max_experiments",
                fix="remove max_experiments and size the space instead (e.g. gamma: {sample: sobol, "
                "low: 0, high: 3.14, n: 64}); the budget and promote.max_share bound the upper rungs",
            )
        costs = []
        for k, rung in enumerate(spec.fidelities):
            shots = task_shots(spec, {**first, FIDELITY: k})
            costs.append(prices.task_cost(rung.device, shots) if is_managed(rung.device) else 0.0)
            if k and costs[k] <= costs[k - 1]:
                below = spec.fidelities[k - 1].device
                raise InputError(
                    f"rung {k} ({rung.device}, ${costs[k]:.4f} per task at {shots} shots) does not cost "
                    f"more than rung {k - 1} ({below}, ${costs[k - 1]:.4f}); a ladder climbs from "
                    "cheap to dear, and a rung no dearer than the one below it teaches nothing that "
                    "one does not",
                    source=source,
                    field=f"projects[{i}].fidelities[{k}].device",
                    fix="order the rungs cheapest first, and drop a rung that costs no more than the "
                    "one below it (or give it more shots)",
                )


def task_shots(spec: ProjectSpec, params: dict[str, Any]) -> int:
    """The shots one run of ``params`` takes: its rung's, else the point's, else the default."""
    options = spec.circuit
    name = options.shots_param if options else "shots"
    default = options.default_shots if options else 1000
    return int(spec.arguments(run_parameters(spec, params)).get(name, default))


def rung_specs(config: Any) -> list[tuple[int, int, ProjectSpec]]:
    """``(project index, rung, spec)`` of each managed rung, for the paid checks: the plain circuit
    project one rung's runs are, checked at the rung's shots."""
    found = []
    for i, spec in enumerate(config.projects):
        for k, rung in enumerate(spec.fidelities):
            if not is_managed(rung.device):
                continue
            on_rung = spec.on_rung({FIDELITY: k})
            if rung.shots is not None and on_rung.circuit is not None:
                circuit = on_rung.circuit.model_copy(
                    update={"shots_param": _RUNG_SHOTS, "default_shots": rung.shots}
                )
                on_rung = on_rung.model_copy(update={"circuit": circuit})
            found.append((i, k, on_rung))
    return found


def at_rung(exc: InputError, index: int, rung: int) -> InputError:
    """``exc`` of a rung's check, its field moved under the rung (``projects[0].fidelities[1].device``)."""
    where = f"projects[{index}]"
    field = exc.field or f"{where}.device"
    if field.startswith(f"{where}.device"):
        field = f"{where}.fidelities[{rung}].device" + field.removeprefix(f"{where}.device")
    exc.field = field
    return exc


def promotions(plan: SweepPlan, experiments: Iterable[Experiment]) -> list[Experiment]:
    """The most each higher rung of each ladder may run: ``max_share`` of the project's points
    (rounded up), those with the most shots, as experiments with ``fidelity: k``."""
    by_project: dict[str, list[Experiment]] = {}
    for exp in experiments:
        if plan.projects[exp.project].fidelities:
            by_project.setdefault(exp.project, []).append(exp)
    added: list[Experiment] = []
    for name, first in by_project.items():
        spec = plan.projects[name]
        count = math.ceil(max_share(spec) * len(first))
        for k, rung in enumerate(spec.fidelities[1:], start=1):
            ranked = sorted(first, key=lambda e: -task_shots(spec, {**e.parameters, FIDELITY: k}))
            added += [
                e.model_copy(
                    update={"parameters": {**e.parameters, FIDELITY: k}, "device": rung.device, "fidelity": k}
                )
                for e in ranked[:count]
            ]
    return added


def rung_costs(
    plan: SweepPlan, experiments: Iterable[Experiment], prices: PriceTable, shots_for: Callable[..., int]
) -> list[RungCost]:
    """The bound per rung of each ladder, over the priced ``experiments`` (rung 0 and promotions)."""
    rows: dict[tuple[str, int], RungCost] = {}
    for exp in experiments:
        spec = plan.projects[exp.project]
        if not spec.fidelities or exp.fidelity is None:
            continue
        rung = spec.fidelities[exp.fidelity]
        row = rows.setdefault(
            (exp.project, exp.fidelity), RungCost(exp.project, exp.fidelity, rung.device, rung.shots)
        )
        row.tasks += 1
        if is_managed(rung.device):
            row.cost += prices.task_cost(rung.device, shots_for(exp))
    return sorted(rows.values(), key=lambda r: (r.project, r.rung))
