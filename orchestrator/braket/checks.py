"""What a sweep on managed Braket devices is checked against before anything is paid.

One entry point, :func:`check_paid_sweep`: the results bucket exists and takes a write, and every
distinct circuit the sweep will submit fits its device (qubits, gates, noise, shots) and the
budget. Every valid point's circuit is built, within a time bound; distinct shapes (what the
device checks look at) are validated once each. Past the bound the check stops with a message
that says how far it got and how to give it more time: a point it did not build is never
silently passed.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.devices import AUTO, DeviceChoice, ShapeChoice, is_managed
from core.errors import InputError, OrchestratorError

if TYPE_CHECKING:
    from adapters.simulator import CircuitNeeds
    from core.config import SweepConfiguration
    from core.project import ProjectSpec
    from core.space import ParameterSpace
    from orchestrator.braket.estimate import CostEstimate
    from orchestrator.braket.prices import PriceTable

DEFAULT_SECONDS = 60.0
SECONDS_ENV = "ORCHESTRATOR_PREFLIGHT_SECONDS"
WRITE_CHECK_KEY = ".orchestrator-write-check"

#: what the device checks look at: a circuit's needs and its shots
Shape = tuple["CircuitNeeds", int]


@dataclass
class Preflight:
    """What checking a sweep's paid projects found.

    Attributes:
        shapes: project index -> circuit shape -> how many points build it.
        choices: project index -> what ``device: auto`` chose per shape.
    """

    shapes: dict[int, Counter[Shape]] = field(default_factory=dict)
    choices: dict[int, DeviceChoice] = field(default_factory=dict)
    #: project index -> shape -> what ``device: auto`` chose for it
    chosen: dict[int, dict[Shape, ShapeChoice]] = field(default_factory=dict)

    @property
    def checked(self) -> int:
        """How many distinct circuit shapes were checked."""
        return sum(len(s) for s in self.shapes.values())

    def explain(self, config: SweepConfiguration, estimate: CostEstimate, prices: PriceTable) -> None:
        """Add to ``estimate`` what ``device: auto`` chose and why, and per paid project the same
        points on the simulators, with a suggestion where one answers for less."""
        from orchestrator.braket.catalog import DeviceCatalog
        from orchestrator.braket.estimate import simulator_alternatives

        catalog = DeviceCatalog()
        for i, shapes in self.shapes.items():
            spec = config.projects[i]
            chosen = self.chosen.get(i, {})
            for shape, made in chosen.items():
                estimate.choices.append({"project": spec.name, "points": shapes[shape], **made.model_dump()})
            devices = {shape: chosen[shape].device if chosen else str(spec.device) for shape in shapes}
            if not any(is_managed(d) for d in devices.values()):
                continue  # free already: nothing to compare (and no Braket call to make)
            rows, suggestion = simulator_alternatives(
                spec.name,
                shapes,
                devices.__getitem__,
                prices=prices,
                info_for=catalog.get,
            )
            if rows[0].cost > 0:
                estimate.alternatives.extend(rows)
                if suggestion:
                    estimate.notes.append(f"suggestion: {suggestion}")


def with_choices(config: SweepConfiguration, found: Preflight) -> SweepConfiguration:
    """``config`` with each ``device: auto`` project's choice in it (stored with the sweep)."""
    if not found.choices:
        return config
    projects = [
        p.model_copy(update={"device_choice": found.choices[i]}) if i in found.choices else p
        for i, p in enumerate(config.projects)
    ]
    return config.model_copy(update={"projects": projects})


def check_paid_sweep(
    space: ParameterSpace,
    projects: Sequence[tuple[int, ProjectSpec]],
    *,
    bucket: str | None,
    prefix: str = "orchestrator/tasks",
    budget: float | None = None,
    prices: PriceTable | None = None,
    source: str = "<sweep>",
    max_seconds: float | None = None,
    refinement: bool = False,
) -> Preflight:
    """Check every paid project of a sweep before anything is submitted.

    Args:
        space: the sweep's parameter space (every valid point is built).
        projects: ``(index in the sweep's projects list, spec)`` of each project on a managed device.
        bucket / prefix: where Braket will write results (``braket_s3_bucket`` / ``_prefix``); None
            when no project can reach a paid device (``device: auto`` among local simulators).
        budget: the sweep's budget in USD (None: no limit).
        prices: the price table (default: the shipped one, or ``$ORCHESTRATOR_PRICE_TABLE``).
        source: the sweep file, named in every message.
        max_seconds: time allowed to build and check circuits (default
            ``$ORCHESTRATOR_PREFLIGHT_SECONDS``, else 60).
        refinement: the optimizer adds points of its own (never checked here, so no
            ``device: auto`` choice could cover them).

    Returns:
        The shapes found per project and, for ``device: auto`` projects, the device chosen for each.

    Raises:
        InputError: the bucket is missing or not writable; a circuit does not fit its device,
            has shots outside its range, or costs more than the budget; no ``device: auto``
            candidate can run a shape; a project is not a circuit project; or the circuits could
            not all be checked within ``max_seconds``.
    """
    if not projects:
        return Preflight()
    for i, spec in projects:
        _check_auto(i, spec, refinement, source)
    if bucket is not None:
        check_results_bucket(bucket, prefix, source=source)
    if max_seconds is None:
        max_seconds = float(os.environ.get(SECONDS_ENV) or DEFAULT_SECONDS)
    return _check_circuits(space, projects, budget, prices, source, max_seconds)


def _check_auto(index: int, spec: ProjectSpec, refinement: bool, source: str) -> None:
    if spec.device != AUTO:
        return
    if spec.may_pay and spec.resource == "local_cpu":
        raise InputError(
            "device: auto may choose a managed Braket device, which local_cpu workers cannot reach",
            source=source,
            field=f"projects[{index}].resource",
            fix="set resource: braket_qpu (or braket_sim), or list only local:sv / local:dm in 'devices'",
        )
    if refinement:
        raise InputError(
            "device: auto chooses a device for each circuit at submit, and refinement adds points "
            "whose circuits were never built then",
            source=source,
            field="optimizer.refinement",
            fix="set optimizer.refinement: false, or name the project's device",
        )


def check_results_bucket(bucket: str, prefix: str, *, source: str = "<sweep>") -> None:
    """The bucket exists and this identity can write to it (a marker written, then deleted).

    Raises:
        InputError: naming the bucket and the fix; never the credentials.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from orchestrator.braket.aws import default_region

    key = f"{prefix.strip('/')}/{WRITE_CHECK_KEY}".lstrip("/")
    s3 = boto3.client("s3", region_name=default_region())
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
        s3.delete_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        why = {
            "NoSuchBucket": "does not exist",
            "AccessDenied": "is not writable with these credentials",
        }.get(code, f"cannot be written ({code or 'error'})")
        raise InputError(
            f"results bucket '{bucket}' {why}; create it (Braket needs a name starting with "
            f"'amazon-braket-') or set ORCHESTRATOR_BRAKET_S3_BUCKET to one you can write to",
            source=source,
            field="braket_s3_bucket",
        ) from None
    except BotoCoreError as exc:
        raise InputError(
            f"results bucket '{bucket}' could not be reached ({type(exc).__name__}); check the network "
            f"and AWS configuration before running paid work",
            source=source,
            field="braket_s3_bucket",
        ) from None


def _check_circuits(
    space: ParameterSpace,
    projects: Sequence[tuple[int, ProjectSpec]],
    budget: float | None,
    prices: PriceTable | None,
    source: str,
    max_seconds: float,
) -> Preflight:
    from adapters import adapt_project
    from adapters.circuit import CircuitAdapter
    from adapters.simulator import as_task_spec, circuit_needs
    from orchestrator.braket.choice import choose_devices
    from orchestrator.braket.executor import BraketManagedExecutor
    from orchestrator.store import BraketLedgers, connect

    # Validation reads no ledger: ledgers on a client that is never connected.
    executor = BraketManagedExecutor(
        BraketLedgers(connect("redis://127.0.0.1:1/0", decode=False)), s3_bucket="-", prices=prices
    )
    deadline = time.monotonic() + max_seconds
    total = int(sum(len(c) for c in space.iter_valid())) * len(projects)
    found = Preflight()
    built = 0
    for i, spec in projects:
        where = f"projects[{i}]"
        adapter = adapt_project(spec.path, spec)
        if not isinstance(adapter, CircuitAdapter):
            raise InputError(
                f"device {spec.device} runs circuit projects only; add a 'circuit' block",
                source=source,
                field=f"{where}.circuit",
            )
        shapes = found.shapes[i] = Counter()
        examples: dict[Shape, tuple[Any, dict[str, Any]]] = {}  # device: auto: one circuit per shape
        points: list[tuple[dict[str, Any], Shape]] = []
        for chunk in space.iter_valid():
            for point in chunk.tolist():
                if time.monotonic() > deadline:
                    raise InputError(
                        f"checked {built} of {total} circuits in {max_seconds:.0f} s and "
                        f"stopped: building them is slow. Paid work is checked in full before it is "
                        f"sent; allow more time (ORCHESTRATOR_PREFLIGHT_SECONDS) or make the sweep smaller",
                        source=source,
                        field=f"{where}.circuit.build",
                    )
                params = space.point(int(point))
                try:
                    program, _ = adapter.build_program(params)
                    task_spec, _ = as_task_spec(program)
                    shape = (circuit_needs(task_spec), adapter.shots(params))  # what device checks look at
                    built += 1
                    shapes[shape] += 1
                    if spec.device == AUTO:
                        points.append((params, shape))
                        examples.setdefault(shape, (task_spec, params))
                    elif shapes[shape] == 1:
                        executor.validate(task_spec, shape[1], str(spec.device), budget=budget)
                except InputError as exc:
                    raise _at(exc, params, where, source) from None
                except OrchestratorError as exc:
                    raise InputError(f"{exc} (at {params})", source=source, field=f"{where}.device") from None
        if spec.device == AUTO:
            choice = found.choices[i] = choose_devices(
                spec, points, examples, budget=budget, prices=executor.prices, source=source, where=where
            )
            # choose_devices keeps the order of ``examples``: shape k's choice is ``shapes[k]``
            found.chosen[i] = dict(zip(examples, choice.shapes, strict=True))
    return found


def _at(exc: InputError, params: dict[str, Any], where: str, source: str) -> InputError:
    exc.source = source
    exc.field = f"{where}.device" if exc.field == "device" else (exc.field or f"{where}.device")
    exc.message = f"{exc.message} (at {params})"
    return exc
