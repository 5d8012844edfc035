"""The seed's ``estimate_cost(experiments) -> CostEstimate``: money before it is spent.

Itemized per device, from the price table, so ``orchestrator estimate`` / ``run --dry-run`` can
show where the money goes and ask for confirmation above a threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import InputError
from core.models import Experiment
from orchestrator.braket.prices import PriceTable, load_price_table

DEFAULT_QPU_SHOTS = 1000
DEFAULT_SIMULATOR_SHOTS = 1000

SIMULATORS = (
    "arn:aws:braket:::device/quantum-simulator/amazon/sv1",
    "arn:aws:braket:::device/quantum-simulator/amazon/dm1",
    "local:sv",
    "local:dm",
)

ShotsFor = Callable[[Experiment], int]
SecondsFor = Callable[[Experiment], float]


@dataclass
class DeviceCost:
    """The cost of the experiments that run on one device.

    Attributes:
        device: device ARN, ``local:*``, or ``local_cpu`` for classical projects.
        kind: the price rule's kind (``qpu``, ``simulator``, ``local``).
        tasks: number of tasks (one per experiment).
        shots: total shots.
        billed_seconds: total simulator seconds billed (minimum applied per task).
        task_fees: USD of per-task fees.
        shot_fees: USD of per-shot fees.
        time_fees: USD of simulator time.
    """

    device: str
    kind: str
    tasks: int = 0
    shots: int = 0
    billed_seconds: float = 0.0
    task_fees: float = 0.0
    shot_fees: float = 0.0
    time_fees: float = 0.0

    @property
    def total(self) -> float:
        return self.task_fees + self.shot_fees + self.time_fees


@dataclass(frozen=True)
class Alternative:
    """What a paid project's points would cost on another device.

    Attributes:
        project: the project.
        device: ``planned`` (the devices the sweep asks for), an SV1/DM1 ARN or ``local:sv``/``local:dm``.
        tasks: the project's paid tasks.
        cost: USD for all of them (0 for the local simulators).
        runs: whether the device can run every one of the project's circuits.
        why_not: what stops it (a qubit limit, noise channels), when it cannot.
    """

    project: str
    device: str
    tasks: int
    cost: float
    runs: bool = True
    why_not: str | None = None
    label: str = ""  # how a table names it: sv1, local:dm, planned (Forte-1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "device": self.device,
            "tasks": self.tasks,
            "cost": round(self.cost, 6),
            "runs": self.runs,
            "why_not": self.why_not,
            "label": self.label,
        }


@dataclass
class CostEstimate:
    """The seed's ``CostEstimate``: total and per-device lines.

    Attributes:
        lines: device -> its cost line.
        currency: from the price table (USD).
        price_table: ``<file>@<date>`` of the table used.
        notes: assumptions a reader should know (default shots, simulator minimums).
    """

    lines: dict[str, DeviceCost] = field(default_factory=dict)
    currency: str = "USD"
    price_table: str = ""
    notes: list[str] = field(default_factory=list)
    #: ``device: auto``: per project and shape, the device chosen and why the others lost
    choices: list[dict[str, Any]] = field(default_factory=list)
    #: per paid project: the same points as planned, on SV1 / DM1 and on the local simulators
    alternatives: list[Alternative] = field(default_factory=list)
    #: per fidelity ladder and rung, its bound (:class:`~orchestrator.braket.rungs.RungCost`)
    rungs: list[Any] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(line.total for line in self.lines.values())

    @property
    def paid_tasks(self) -> int:
        return sum(line.tasks for line in self.lines.values() if line.kind != "local")

    def exceeds(self, budget: float | None) -> bool:
        """Whether the estimate is above ``budget`` (None: never)."""
        return budget is not None and self.total > budget + 1e-9

    def rows(self) -> list[dict[str, object]]:
        """One JSON-able row per device, most expensive first, for tables and the API."""
        return [
            {
                "device": line.device,
                "kind": line.kind,
                "tasks": line.tasks,
                "shots": line.shots,
                "billed_seconds": round(line.billed_seconds, 3),
                "cost": round(line.total, 6),
            }
            for line in sorted(self.lines.values(), key=lambda x: -x.total)
        ]


def estimate_cost(
    experiments: Iterable[Experiment],
    *,
    prices: PriceTable | None = None,
    shots_for: ShotsFor | None = None,
    seconds_for: SecondsFor | None = None,
) -> CostEstimate:
    """Price every experiment's task on its device and add them up per device.

    Args:
        experiments: the sweep's experiments (``device`` None means classical, free).
        prices: the price table (default: shipped or ``$ORCHESTRATOR_PRICE_TABLE``).
        shots_for: shots of an experiment; default ``parameters["shots"]`` else 1000.
        seconds_for: expected simulator seconds of an experiment; default 0 (the billing minimum).

    Raises:
        InputError: an experiment's device has no price in the table.
    """
    prices = prices or load_price_table()
    estimate = CostEstimate(currency=prices.currency, price_table=prices.version)
    defaulted_shots = defaulted_seconds = False
    for exp in experiments:
        device = exp.device or "local_cpu"
        if device == "local_cpu" or device.startswith("local:"):
            line = estimate.lines.setdefault(device, DeviceCost(device, "local"))
            line.tasks += 1
            continue
        rule = prices.price_for(device)
        line = estimate.lines.setdefault(device, DeviceCost(device, rule.kind))
        if shots_for is not None:
            shots = int(shots_for(exp))
        else:
            shots = int(exp.parameters.get("shots", DEFAULT_QPU_SHOTS))
            defaulted_shots = defaulted_shots or "shots" not in exp.parameters
        line.tasks += 1
        line.shots += shots
        if rule.kind == "qpu":
            line.task_fees += rule.per_task
            line.shot_fees += rule.per_shot * shots
        elif rule.kind == "simulator":
            seconds = float(seconds_for(exp)) if seconds_for else 0.0
            defaulted_seconds = defaulted_seconds or seconds_for is None
            billed = max(seconds, rule.minimum_seconds)
            line.billed_seconds += billed
            line.time_fees += rule.per_minute * billed / 60.0
    if defaulted_shots:
        estimate.notes.append(
            f"experiments without a 'shots' parameter are priced at {DEFAULT_QPU_SHOTS} shots"
        )
    if defaulted_seconds and any(line.kind == "simulator" for line in estimate.lines.values()):
        estimate.notes.append(
            "managed simulator tasks are priced at the billing minimum; long circuits cost more"
        )
    return estimate


def simulator_alternatives(
    project: str,
    shapes: Mapping[tuple[Any, int], int],
    device_of: Callable[[tuple[Any, int]], str],
    *,
    prices: PriceTable,
    info_for: Callable[[str], Any],
) -> tuple[list[Alternative], str | None]:
    """The project's points as planned, on SV1 / DM1 and on ``local:sv`` / ``local:dm``, and a
    one-line suggestion when a simulator that can run them all costs less.

    Args:
        project: the project's name.
        shapes: ``(circuit needs, shots)`` -> how many of the project's points build that circuit.
        device_of: the device the sweep runs a shape on (named, or chosen by ``device: auto``).
        prices: the price table.
        info_for: device -> its :class:`~orchestrator.braket.catalog.DeviceInfo` (raises when unknown).
    """
    from orchestrator.braket.devices import estimate_simulator_seconds, incompatibility

    def cost(device: str, needs: Any, shots: int) -> float:
        seconds = estimate_simulator_seconds(needs, shots) if "quantum-simulator" in device else None
        return prices.task_cost(device, shots, seconds)

    tasks = sum(shapes.values())
    asked = sorted({_short(device_of(s)) for s in shapes})
    planned = Alternative(
        project,
        "planned",
        tasks,
        sum(n * cost(device_of(s), *s) for s, n in shapes.items()),
        label=f"planned ({', '.join(asked)})",
    )
    rows = [planned]
    for device in SIMULATORS:
        try:
            info = info_for(device)
        except Exception as exc:  # noqa: BLE001 - an alternative we cannot describe is not offered
            rows.append(
                Alternative(project, device, tasks, 0.0, False, f"not reachable: {exc}", _short(device))
            )
            continue
        why = next((w for s in shapes if (w := incompatibility(info, *s))), None)
        try:
            total = 0.0 if why else sum(n * cost(device, *s) for s, n in shapes.items())
        except InputError:  # a user's table without this simulator: nothing to compare with
            why, total = "no price in the price table", 0.0
        rows.append(Alternative(project, device, tasks, total, why is None, why, _short(device)))
    runnable = [r for r in rows[1:] if r.runs and r.cost < planned.cost]
    if not runnable:
        return rows, None
    hardware = any("/qpu/" in device_of(s) for s in shapes)
    # the same question: a QPU's points on a noisy simulator (hardware has noise), else the same kind
    best = min(runnable, key=lambda r: (r.cost, ("dm" in r.device) != hardware, r.device))
    free = "free" if best.cost == 0 else f"${best.cost:.2f}"
    return rows, (
        f"{project}: {best.label} runs the same {tasks} points for {free} instead of ${planned.cost:.2f}"
        + (
            " (noise: a model's, not the hardware's); use it unless the hardware itself is studied"
            if hardware
            else ""
        )
    )


def _short(device: str) -> str:
    """``sv1``, ``Forte-1``, ``local:dm``: the last part of an ARN."""
    return device.rsplit("/", 1)[-1]
