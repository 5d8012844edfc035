"""``device: auto``: each circuit shape of a sweep gets the cheapest device that can run it now.

Chosen once, at submit, from the shapes the preflight built (:mod:`.checks`), by
:func:`~orchestrator.braket.devices.get_optimal_device` over the project's candidates. The result,
a :class:`~core.project.DeviceChoice`, is stored with the sweep's configuration: every later plan of
the sweep (a coordinator restarted mid-sweep, a refit, a worker) reads the device from it instead
of choosing again, so paid work never moves to another device (and another experiment id) halfway.

Ties are broken by name, not by queue depth: the same catalog gives the same choice, so a sweep
submitted again after it ended finds its paid results under the same ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.devices import DeviceChoice, ShapeChoice
from core.errors import InputError, ResourceError
from core.project import ProjectSpec
from orchestrator.braket.catalog import DeviceCatalog, DeviceInfo, local_device
from orchestrator.braket.devices import DeviceRecommendation, get_optimal_device, incompatibility
from orchestrator.braket.prices import PriceTable

if TYPE_CHECKING:
    from adapters.simulator import CircuitNeeds

Shape = tuple["CircuitNeeds", int]


def describe(needs: CircuitNeeds, shots: int) -> str:
    """A shape in words: ``30 qubits, 59 gates (cnot, h), 1000 shots``."""
    text = (
        f"{needs.qubits} qubits, {needs.gate_count} gates ({', '.join(sorted(needs.gates))}), {shots} shots"
    )
    return text + (f", noise {', '.join(sorted(needs.noise))}" if needs.noise else "")


def candidates(spec: ProjectSpec, catalog: DeviceCatalog) -> list[DeviceInfo]:
    """The project's ``devices``, or every device the account can reach plus the local simulators.

    Raises:
        InputError: a listed device Braket does not know.
    """
    if spec.devices:
        return [catalog.get(arn) for arn in spec.devices]
    return [*catalog.search(), local_device("local:sv"), local_device("local:dm")]


def choose_devices(
    spec: ProjectSpec,
    points: Sequence[tuple[dict[str, Any], Shape]],
    examples: dict[Shape, tuple[Any, dict[str, Any]]],
    *,
    budget: float | None,
    prices: PriceTable,
    source: str,
    where: str,
    catalog: DeviceCatalog | None = None,
) -> DeviceChoice:
    """Choose a device for each distinct shape of a ``device: auto`` project.

    Args:
        spec: the project (its ``devices`` and ``require_qpu``).
        points: every valid point's parameters and the shape it builds.
        examples: shape -> one circuit of that shape and the parameters that built it.
        budget: the sweep's budget (a device whose task costs more loses).
        prices: the price table.
        source / where: the sweep file and the project's field path, for messages.

    Raises:
        InputError: no candidate can run a shape now (naming the shape and the closest device),
            or the budget is below the cheapest task.
    """
    catalog = catalog or DeviceCatalog()
    try:
        pool = candidates(spec, catalog)
    except InputError as exc:
        raise InputError(exc.message, source=source, field=f"{where}.devices") from None
    order = list(examples)
    shapes = [_choose(spec, shape, examples[shape], pool, budget, prices, source, where) for shape in order]
    keys = _shape_keys(sorted({n for params, _ in points for n in params}), points)
    index = {shape: i for i, shape in enumerate(order)}
    return DeviceChoice(
        keys=keys,
        points={DeviceChoice.key_of(keys, params): index[shape] for params, shape in points},
        shapes=shapes,
    )


def _choose(
    spec: ProjectSpec,
    shape: Shape,
    example: tuple[Any, dict[str, Any]],
    pool: list[DeviceInfo],
    budget: float | None,
    prices: PriceTable,
    source: str,
    where: str,
) -> ShapeChoice:
    (needs, shots), (circuit, params) = shape, example
    try:
        rec = get_optimal_device(
            circuit,
            budget,
            shots=shots,
            devices=pool,
            prices=prices,
            require_qpu=spec.require_qpu,
            allow_local=False,  # the pool has them when they are candidates
            by_queue=False,
        )
    except (InputError, ResourceError) as exc:
        if isinstance(exc, InputError) and exc.field == "budget":
            raise InputError(
                f"{exc.message} (the {describe(needs, shots)} circuit, at {params})",
                source=source,
                field="budget_limit",
            ) from None
        kind = "QPU" if spec.require_qpu else "candidate"
        raise InputError(
            f"device: auto: no {kind} can run the {describe(needs, shots)} circuit now (at {params}); "
            f"closest: {_closest(pool, needs, shots, spec.require_qpu)}",
            source=source,
            field=f"{where}.devices",
            fix="add a device that can run it to 'devices', make the circuit smaller, or wait until "
            "the device is online",
        ) from None
    return ShapeChoice(
        shape=describe(needs, shots),
        device=rec.device,
        cost=rec.estimated_cost,
        reason=rec.reason,
        candidates=_why_others_lost(rec, budget, spec.require_qpu),
    )


def _why_others_lost(rec: DeviceRecommendation, budget: float | None, require_qpu: bool) -> dict[str, str]:
    lost = dict(rec.rejected)
    for option in rec.alternatives:
        price = f"${option.cost:.4f} per task"
        if require_qpu and option.device_type != "QPU":
            lost[option.arn] = f"not a QPU (require_qpu); {price}"
        elif budget is not None and option.cost > budget:
            lost[option.arn] = f"{price}, above the budget ${budget:.2f}"
        elif option.cost > rec.estimated_cost:
            lost[option.arn] = f"{price}, more than {rec.name} at ${rec.estimated_cost:.4f}"
        elif option.penalty:
            lost[option.arn] = (
                f"{price}, as {rec.name}, and slower: it simulates noise this circuit does not have"
            )
        else:
            lost[option.arn] = f"{price}, as {rec.name}: the tie goes to the one first by name"
    return lost


def _closest(pool: list[DeviceInfo], needs: CircuitNeeds, shots: int, require_qpu: bool) -> str:
    """The candidate that comes nearest to running the shape, and what stops it."""
    if require_qpu:
        pool = [d for d in pool if d.is_qpu] or pool
    if not pool:
        return "none (no candidates)"

    def gap(device: DeviceInfo) -> tuple[int, int, str]:
        if incompatibility(device, needs, shots) is None:
            return (0, 0, device.arn)  # it could run it, but not now
        return (
            1 + max(0, needs.qubits - device.qubit_count),
            len(needs.gates - device.operations),
            device.arn,
        )

    best = min(pool, key=gap)
    why = incompatibility(best, needs, shots) or best.unavailable_reason() or "costs more than the budget"
    return f"{best.name} ({best.arn}): {why}"


def _shape_keys(names: list[str], points: Sequence[tuple[dict[str, Any], Shape]]) -> list[str]:
    """The fewest swept parameters whose values tell the points' shapes apart (greedy).

    Usually one or two (a width, the shots), so the stored choice stays small whatever the sweep's size.
    """
    keys = list(names)
    for name in names:
        trial = [k for k in keys if k != name]
        seen: dict[str, Shape] = {}
        if all(seen.setdefault(DeviceChoice.key_of(trial, p), s) == s for p, s in points):
            keys = trial
    return keys
