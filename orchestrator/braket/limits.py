"""Braket service limits: what they are, where they come from, and their enforcement.

Quotas are read from the Service Quotas API when it answers (real AWS, or any endpoint set with
``AWS_ENDPOINT_URL_SERVICE_QUOTAS``) and otherwise default to the documented values; either can be
overridden by configuration. Enforcement: shots per task (checked before submission, as bad
input), the CreateQuantumTask rate (the token bucket in :mod:`.throttle`), and concurrent tasks
per managed simulator (:class:`ConcurrencyGate`, a Redis sorted set checked in Lua).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from core.errors import InputError
from orchestrator.braket.catalog import DM1_ARN, SV1_ARN, DeviceInfo

if TYPE_CHECKING:
    from orchestrator.store.ledgers import BraketLedgers


@dataclass(frozen=True)
class ServiceLimits:
    """Braket quotas the orchestrator respects (per account and region).

    Attributes:
        create_task_rate: CreateQuantumTask requests per second (AWS default 20).
        create_task_burst: CreateQuantumTask burst (AWS default 40).
        api_rate: all Braket API requests per second (AWS default 140).
        concurrent_tasks: device ARN -> open tasks allowed. AWS documents 35-100 for SV1/DM1
            depending on the page; the low end is the default so that we never meet a 402.
        max_shots: device ARN -> shots per task cap on top of the device's own range.
        max_task_seconds: seconds a task on a per-minute simulator (SV1, DM1) may run. Its cost is
            what is reserved against the budget before submission, and a task still open after
            it is cancelled: budgets on per-minute devices hold by this bound.
    """

    create_task_rate: float = 20.0
    create_task_burst: float = 40.0
    api_rate: float = 140.0
    concurrent_tasks: Mapping[str, int] = field(default_factory=lambda: {SV1_ARN: 35, DM1_ARN: 35})
    max_shots: Mapping[str, int] = field(default_factory=lambda: {SV1_ARN: 100_000, DM1_ARN: 100_000})
    max_task_seconds: float = 60.0

    def concurrency_for(self, device_arn: str) -> int | None:
        """Open tasks allowed on ``device_arn`` (None: not limited)."""
        return self.concurrent_tasks.get(device_arn)

    def shots_range(self, device: DeviceInfo) -> tuple[int, int]:
        """The shots a task on ``device`` may have: the device's range, capped by quota."""
        low, high = device.shots_range
        cap = self.max_shots.get(device.arn)
        return low, min(high, cap) if cap is not None else high


@dataclass(frozen=True)
class ServiceLimitStatus:
    """The seed's ``ServiceLimitStatus``.

    Attributes:
        limits: the limits in force.
        source: ``service-quotas`` (read from the API), ``defaults`` or ``configured``.
        in_flight: device ARN -> open tasks now (from the concurrency gate).
        notes: what could not be read and why (never credentials).
    """

    limits: ServiceLimits
    source: str
    in_flight: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def saturated(self) -> list[str]:
        """Devices whose concurrent-task quota is fully used."""
        return [
            arn
            for arn, n in self.in_flight.items()
            if (cap := self.limits.concurrency_for(arn)) is not None and n >= cap
        ]


def _match_quota(name: str) -> tuple[str, str | None] | None:
    """Map a Service Quotas quota name to (field, device) by its words; AWS names them in prose."""
    text = name.lower()
    if "createquantumtask" in text.replace(" ", ""):
        return ("create_task_burst", None) if "burst" in text else ("create_task_rate", None)
    if "rate of api" in text or "api requests" in text:
        return "api_rate", None
    if "concurrent" in text:
        for key, arn in (("sv1", SV1_ARN), ("dm1", DM1_ARN)):
            if key in text:
                return "concurrent_tasks", arn
    return None


def read_service_quotas(client: Any) -> tuple[dict[str, Any], list[str]]:
    """Read Braket's quotas through a ``service-quotas`` client.

    Returns:
        (changes for :class:`ServiceLimits`, notes).
    """
    changes: dict[str, Any] = {}
    concurrent: dict[str, int] = {}
    token: str | None = None
    while True:
        page = client.list_service_quotas(ServiceCode="braket", **({"NextToken": token} if token else {}))
        for quota in page.get("Quotas", []):
            matched = _match_quota(str(quota.get("QuotaName", "")))
            if matched is None or quota.get("Value") is None:
                continue
            name, device = matched
            if device:
                concurrent[device] = int(quota["Value"])
            else:
                changes[name] = float(quota["Value"])
        token = page.get("NextToken")
        if not token:
            break
    if concurrent:
        changes["concurrent_tasks"] = concurrent
    return changes, [] if changes else ["Service Quotas returned no Braket quotas; using defaults"]


def load_service_limits(
    *,
    region: str | None = None,
    quotas_client: Any | None = None,
    overrides: Mapping[str, Any] | None = None,
    query_api: bool | None = None,
) -> ServiceLimitStatus:
    """Limits from Service Quotas where reachable, else defaults; then ``overrides``.

    Args:
        region: AWS region of the quotas.
        quotas_client: a ``service-quotas`` client (tests pass a stub); built when None.
        overrides: field -> value from the user's configuration; they win over the API.
        query_api: ask the API. Default: when a client is given, ``AWS_ENDPOINT_URL_SERVICE_QUOTAS``
            is set, or AWS credentials are configured and Braket is not pointed at a local endpoint.
    """
    limits, source = ServiceLimits(), "defaults"
    notes: list[str] = []
    if query_api is None:
        # Ask real AWS only when Braket itself is real (no local endpoint override): against a fake
        # Braket there is no quota service, and a connect timeout per worker start buys nothing.
        real_aws = not os.environ.get("AWS_ENDPOINT_URL_BRAKET") and bool(
            os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")
        )
        query_api = (
            quotas_client is not None or bool(os.environ.get("AWS_ENDPOINT_URL_SERVICE_QUOTAS")) or real_aws
        )
    if query_api:
        try:
            client = quotas_client or _quotas_client(region)
            changes, notes = read_service_quotas(client)
            if changes:
                merged = dict(limits.concurrent_tasks) | changes.pop("concurrent_tasks", {})
                limits, source = replace(limits, concurrent_tasks=merged, **changes), "service-quotas"
        except Exception as exc:  # noqa: BLE001 - unreachable or not permitted: defaults are the answer
            notes = [f"Service Quotas unreachable ({type(exc).__name__}); using documented defaults"]
    if overrides:
        unknown = set(overrides) - {f for f in ServiceLimits.__dataclass_fields__}
        if unknown:
            raise InputError(
                f"unknown service limit(s) {sorted(unknown)}; known: "
                f"{sorted(ServiceLimits.__dataclass_fields__)}",
                field="limits",
            )
        limits, source = replace(limits, **overrides), "configured"
    return ServiceLimitStatus(limits, source, notes=tuple(notes))


LIMITS_ENV = "ORCHESTRATOR_BRAKET_LIMITS"


def configured_overrides() -> dict[str, Any]:
    """The service limits a deployment sets in ``$ORCHESTRATOR_BRAKET_LIMITS`` (JSON of
    :class:`ServiceLimits` fields, e.g. ``{"create_task_rate": 10, "max_task_seconds": 120}``).

    Raises:
        InputError: not a JSON object.
    """
    import json

    raw = os.environ.get(LIMITS_ENV)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", source=LIMITS_ENV) from None
    if not isinstance(value, dict):
        raise InputError("must be a JSON object of service limit fields", source=LIMITS_ENV)
    return value


def _quotas_client(region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    from orchestrator.braket.aws import default_region

    config = Config(connect_timeout=2, read_timeout=3, retries={"total_max_attempts": 1})
    return boto3.client("service-quotas", region_name=region or default_region(), config=config)


def check_service_limits(
    *,
    ledgers: BraketLedgers | None = None,
    status: ServiceLimitStatus | None = None,
    **load: Any,
) -> ServiceLimitStatus:
    """The seed's ``check_service_limits()``: the limits in force and current usage.

    Args:
        ledgers: the deployment's Braket ledgers, holding the concurrency slots (omit to skip usage).
        status: already-loaded limits (else :func:`load_service_limits` with ``load``).
    """
    status = status or load_service_limits(**load)
    if ledgers is None:
        return status
    gate = ledgers.slots(status.limits)
    return replace(status, in_flight={arn: gate.in_flight(arn) for arn in status.limits.concurrent_tasks})


def enforce_shots(device: DeviceInfo, shots: int, limits: ServiceLimits | None = None) -> None:
    """Raise ``InputError`` when ``shots`` is outside what ``device`` (and the quota) accepts."""
    low, high = (limits or ServiceLimits()).shots_range(device)
    if not isinstance(shots, int) or isinstance(shots, bool) or not low <= shots <= high:
        raise InputError(
            f"{shots} shots is outside {device.name}'s range [{low}, {high}]; choose shots in that range",
            field="shots",
        )
