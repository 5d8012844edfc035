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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.errors import InputError, OrchestratorError

if TYPE_CHECKING:
    from core.project import ProjectSpec
    from core.space import ParameterSpace
    from orchestrator.braket.prices import PriceTable

DEFAULT_SECONDS = 60.0
SECONDS_ENV = "ORCHESTRATOR_PREFLIGHT_SECONDS"
WRITE_CHECK_KEY = ".orchestrator-write-check"


def check_paid_sweep(
    space: ParameterSpace,
    projects: Sequence[tuple[int, ProjectSpec]],
    *,
    bucket: str,
    prefix: str = "orchestrator/tasks",
    budget: float | None = None,
    prices: PriceTable | None = None,
    source: str = "<sweep>",
    max_seconds: float | None = None,
) -> int:
    """Check every paid project of a sweep before anything is submitted.

    Args:
        space: the sweep's parameter space (every valid point is built).
        projects: ``(index in the sweep's projects list, spec)`` of each project on a managed device.
        bucket / prefix: where Braket will write results (``braket_s3_bucket`` / ``_prefix``).
        budget: the sweep's budget in USD (None: no limit).
        prices: the price table (default: the shipped one, or ``$ORCHESTRATOR_PRICE_TABLE``).
        source: the sweep file, named in every message.
        max_seconds: time allowed to build and check circuits (default
            ``$ORCHESTRATOR_PREFLIGHT_SECONDS``, else 60).

    Returns:
        How many distinct circuit shapes were validated.

    Raises:
        InputError: the bucket is missing or not writable; a circuit does not fit its device,
            has shots outside its range, or costs more than the budget; a project is not a
            circuit project; or the circuits could not all be checked within ``max_seconds``.
    """
    if not projects:
        return 0
    check_results_bucket(bucket, prefix, source=source)
    if max_seconds is None:
        max_seconds = float(os.environ.get(SECONDS_ENV) or DEFAULT_SECONDS)
    return _check_circuits(space, projects, budget, prices, source, max_seconds)


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
) -> int:
    from adapters import adapt_project
    from adapters.circuit import CircuitAdapter
    from adapters.simulator import as_task_spec, circuit_needs
    from orchestrator.braket.executor import BraketManagedExecutor
    from orchestrator.store import BraketLedgers, connect

    # Validation reads no ledger: ledgers on a client that is never connected.
    executor = BraketManagedExecutor(
        BraketLedgers(connect("redis://127.0.0.1:1/0", decode=False)), s3_bucket="-", prices=prices
    )
    deadline = time.monotonic() + max_seconds
    total = int(sum(len(c) for c in space.iter_valid()))
    seen: set[Any] = set()
    built = 0
    for i, spec in projects:
        field = f"projects[{i}]"
        adapter = adapt_project(spec.path, spec)
        if not isinstance(adapter, CircuitAdapter):
            raise InputError(
                f"device {spec.device} runs circuit projects only; add a 'circuit' block",
                source=source,
                field=f"{field}.circuit",
            )
        for chunk in space.iter_valid():
            for point in chunk.tolist():
                if time.monotonic() > deadline:
                    raise InputError(
                        f"checked {built} of {total * len(projects)} circuits in {max_seconds:.0f} s and "
                        f"stopped: building them is slow. Paid work is checked in full before it is "
                        f"sent; allow more time (ORCHESTRATOR_PREFLIGHT_SECONDS) or make the sweep smaller",
                        source=source,
                        field=f"{field}.circuit.build",
                    )
                params = space.point(int(point))
                try:
                    program, _ = adapter.build_program(params)
                    task_spec, _ = as_task_spec(program)
                    shots = adapter.shots(params)
                    needs = circuit_needs(task_spec)
                    built += 1
                    shape = (spec.device, shots, needs)  # what the device checks look at
                    if shape in seen:
                        continue
                    seen.add(shape)
                    executor.validate(task_spec, shots, str(spec.device), budget=budget)
                except InputError as exc:
                    exc.source = source
                    exc.field = (
                        f"{field}.device" if exc.field == "device" else (exc.field or f"{field}.device")
                    )
                    exc.message = f"{exc.message} (at {params})"
                    raise
                except OrchestratorError as exc:
                    raise InputError(f"{exc} (at {params})", source=source, field=f"{field}.device") from None
    return len(seen)
