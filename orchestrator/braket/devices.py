"""Choosing a device for a circuit: the seed's ``get_optimal_device(circuit, budget)``.

A device is a candidate when it can run the circuit at all (qubits, gates, noise channels,
connectivity when rewiring is off, shots) and can run it now (online, inside an execution
window). Among candidates the cheapest wins, then the shortest queue. A simulator wins over a
QPU when it answers the question for less, unless the caller says the question needs hardware
(``require_qpu``): then simulators are only reported as the cheaper alternative.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.simulator import LOCAL_DM, LOCAL_SV, CircuitNeeds, circuit_needs
from core.errors import InputError, ResourceError
from orchestrator.braket.catalog import DeviceCatalog, DeviceInfo, local_device
from orchestrator.braket.prices import PriceTable, load_price_table
from orchestrator.store.budget import check_limit


def estimate_simulator_seconds(needs: CircuitNeeds, shots: int) -> float:
    """A rough, deliberately pessimistic run time on a managed simulator.

    Below ~20 qubits a task finishes well inside the 3 s billing minimum; above, state-vector
    time doubles per qubit. Only used for estimates and reservations; billing uses the measured
    duration from the task's result.
    """
    if needs.qubits <= 20:
        return 1.0
    return 1.0 + 0.002 * max(needs.gate_count, 1) * 2 ** (needs.qubits - 20) * (1 + shots / 10_000)


@dataclass(frozen=True)
class DeviceOption:
    """One feasible device, priced for this circuit."""

    arn: str
    name: str
    device_type: str
    cost: float
    queue_depth: int | None
    notes: tuple[str, ...] = ()
    #: tie-breaker among equal prices: a density-matrix simulator for a noiseless circuit is slower
    penalty: int = 0


@dataclass(frozen=True)
class DeviceRecommendation:
    """The seed's ``DeviceRecommendation``.

    Attributes:
        device: the chosen device ARN (or ``local:sv`` / ``local:dm``).
        name: its display name.
        estimated_cost: USD for one task of ``shots`` shots.
        shots: the shots the estimate is for.
        reason: why this device, in one sentence a user can read.
        alternatives: other feasible devices, cheapest first.
        rejected: device -> why it cannot run the circuit now.
        cheaper_simulator: when a QPU was required, the simulator that would answer for less.
    """

    device: str
    name: str
    estimated_cost: float
    shots: int
    reason: str
    alternatives: tuple[DeviceOption, ...] = ()
    rejected: dict[str, str] = field(default_factory=dict)
    cheaper_simulator: DeviceOption | None = None


def get_optimal_device(
    circuit: Any,
    budget: float | None,
    *,
    shots: int = 1000,
    catalog: DeviceCatalog | None = None,
    devices: Sequence[DeviceInfo] | None = None,
    prices: PriceTable | None = None,
    require_qpu: bool = False,
    allow_local: bool = True,
    disable_qubit_rewiring: bool = False,
    now: datetime | None = None,
    by_queue: bool = True,
) -> DeviceRecommendation:
    """Pick the device that runs ``circuit`` for the least money within ``budget``.

    Args:
        circuit: a Braket ``Circuit`` or an OpenQASM program.
        budget: USD available for this task; None means no limit.
        shots: shots per task.
        catalog: where managed devices come from (searched when ``devices`` is not given).
        devices: the managed devices to consider (already fetched); local ones are added.
        prices: the price table (default: the shipped or user-configured one).
        require_qpu: the question needs real hardware; simulators are reported, not chosen.
        allow_local: consider ``local:sv`` / ``local:dm``.
        disable_qubit_rewiring: the circuit's qubits are physical; connectivity must match.
        now: the time to check execution windows against (default: now).
        by_queue: among equal prices, prefer the shorter queue; False breaks ties by ARN alone, so
            the same catalog always gives the same answer (``device: auto`` stores its choice).

    Raises:
        InputError: negative budget, no device can run the circuit, or the budget is below the
            cheapest feasible task (the message names the cheapest option and its price).
        ResourceError: ``require_qpu`` and no QPU is online and inside its window now.
    """
    check_limit(budget, field="budget")
    if shots < 0:
        raise InputError(f"shots must be >= 0, got {shots}", field="shots")
    prices = prices or load_price_table()
    needs = circuit_needs(circuit)
    pool = list(devices) if devices is not None else (catalog or DeviceCatalog()).search()
    if allow_local:
        pool += [local_device(LOCAL_SV), local_device(LOCAL_DM)]
    options, rejected = _price_feasible(pool, needs, shots, prices, disable_qubit_rewiring, now)
    if not options:
        detail = "; ".join(f"{arn}: {why}" for arn, why in rejected.items()) or "no devices known"
        raise InputError(
            f"no device can run this {needs.qubits}-qubit circuit with {shots} shots ({detail})",
            field="device",
        )
    options.sort(
        key=lambda o: (
            o.cost,
            o.penalty,
            (math.inf if o.queue_depth is None else o.queue_depth) if by_queue else 0,
            o.arn,
        )
    )
    simulators = [o for o in options if o.device_type != "QPU"]
    qpus = [o for o in options if o.device_type == "QPU"]
    if require_qpu and not qpus:
        # Not bad input: QPUs come back online and windows open. The caller pauses or waits.
        raise ResourceError(
            "no QPU can run this circuit now ("
            + "; ".join(f"{a}: {r}" for a, r in rejected.items() if "/qpu/" in a)
            + ")"
        )
    ranked = qpus if require_qpu else options
    affordable = [o for o in ranked if budget is None or o.cost <= budget]
    if not affordable:
        cheapest = ranked[0]
        raise InputError(
            f"budget ${budget:.4f} is below the cheapest task: {cheapest.name} at "
            f"${cheapest.cost:.4f} for {shots} shots; raise the budget or lower the shots",
            field="budget",
        )
    best = affordable[0]
    cheaper_sim = simulators[0] if require_qpu and simulators and simulators[0].cost < best.cost else None
    return DeviceRecommendation(
        device=best.arn,
        name=best.name,
        estimated_cost=best.cost,
        shots=shots,
        reason=_reason(best, qpus, simulators, require_qpu, cheaper_sim),
        alternatives=tuple(o for o in options if o.arn != best.arn),
        rejected=rejected,
        cheaper_simulator=cheaper_sim,
    )


def _price_feasible(
    pool: Iterable[DeviceInfo],
    needs: CircuitNeeds,
    shots: int,
    prices: PriceTable,
    verbatim: bool,
    now: datetime | None,
) -> tuple[list[DeviceOption], dict[str, str]]:
    options, rejected = [], {}
    for device in pool:
        why = incompatibility(device, needs, shots, verbatim=verbatim) or device.unavailable_reason(now)
        if why:
            rejected[device.arn] = why
            continue
        notes = []
        if device.is_qpu and not device.fully_connected and not _pairs_fit(device, needs):
            notes.append("needs routing (SWAPs) on this topology")
        seconds = estimate_simulator_seconds(needs, shots) if device.device_type == "SIMULATOR" else None
        try:
            cost = prices.task_cost(device.arn, shots, seconds)
        except InputError as exc:
            rejected[device.arn] = exc.message
            continue
        options.append(
            DeviceOption(
                device.arn,
                device.name,
                device.device_type,
                cost,
                device.queue_depth,
                tuple(notes),
                penalty=int(device.supports_noise and not needs.noise),
            )
        )
    return options, rejected


def incompatibility(
    device: DeviceInfo, needs: CircuitNeeds, shots: int, *, verbatim: bool = False
) -> str | None:
    """Why ``device`` can never run a circuit with ``needs`` at ``shots`` shots (None: it can)."""
    width = needs.max_index if verbatim else needs.qubits
    if width > device.qubit_count:
        return f"circuit needs {width} qubits, device has {device.qubit_count}"
    if needs.noise and not device.supports_noise:
        return (
            f"circuit has noise channels ({', '.join(sorted(needs.noise))}); device does not simulate noise"
        )
    missing = needs.gates - device.operations
    if missing:
        return f"gates not supported: {', '.join(sorted(missing))}"
    low, high = device.shots_range
    if not low <= shots <= high:
        return f"{shots} shots outside the device's range [{low}, {high}]"
    if verbatim and not _pairs_fit(device, needs):
        return "two-qubit gates on uncoupled qubits, and qubit rewiring is disabled"
    return None


def _pairs_fit(device: DeviceInfo, needs: CircuitNeeds) -> bool:
    return all(device.connected(a, b) for a, b in needs.pairs)


def _reason(
    best: DeviceOption,
    qpus: list[DeviceOption],
    sims: list[DeviceOption],
    require_qpu: bool,
    cheaper_sim: DeviceOption | None,
) -> str:
    queue = f", queue {best.queue_depth}" if best.queue_depth is not None else ""
    if require_qpu:
        text = f"{best.name} is the cheapest available QPU for this circuit (${best.cost:.4f}{queue})"
        if cheaper_sim:
            text += (
                f"; {cheaper_sim.name} would answer for ${cheaper_sim.cost:.4f} if hardware noise is not "
                f"what is being studied"
            )
        return text
    if best.device_type != "QPU" and qpus:
        return (
            f"{best.name} answers this circuit for ${best.cost:.4f}, less than the cheapest QPU "
            f"({qpus[0].name}, ${qpus[0].cost:.4f}); pass require_qpu=True to study hardware effects"
        )
    return f"{best.name} is the cheapest device that can run this circuit (${best.cost:.4f}{queue})"
