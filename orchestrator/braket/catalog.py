"""What each device can do, right now: qubits, gates, noise, connectivity, status, windows, queue.

``DeviceInfo`` is read from Braket's GetDevice (through the real SDK session) or describes one of
the local simulators. ``DeviceCatalog`` caches it briefly, because a device's status and queue
change but a sweep asks about the same few devices thousands of times.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

from botocore.exceptions import ClientError
from braket.aws import AwsSession

from adapters.simulator import LOCAL_DEVICE_QUBITS, LOCAL_DM, LOCAL_SV
from core.errors import InputError
from orchestrator.braket.aws import braket_session, device_region
from orchestrator.braket.retry import RetryPolicy, error_code

SV1_ARN = "arn:aws:braket:::device/quantum-simulator/amazon/sv1"
DM1_ARN = "arn:aws:braket:::device/quantum-simulator/amazon/dm1"

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class ExecutionWindow:
    """A recurring UTC window in which a device runs tasks (Braket's ``executionWindows``).

    Attributes:
        day: ``Everyday``, ``Weekdays``, ``Weekend`` or a day name.
        start: window start (UTC).
        end: window end (UTC); earlier than ``start`` when the window crosses midnight.
    """

    day: str
    start: dtime
    end: dtime

    def contains(self, at: datetime) -> bool:
        """Whether ``at`` (any timezone) falls inside this window."""
        at = at.astimezone(UTC)
        now, weekday = at.time().replace(microsecond=0), at.weekday()
        crosses = self.end < self.start
        if crosses and now <= self.end:
            weekday = (weekday - 1) % 7  # the window opened yesterday
        if not self._day_matches(weekday):
            return False
        if crosses:
            return now >= self.start or now <= self.end
        return self.start <= now <= self.end

    def _day_matches(self, weekday: int) -> bool:
        day = self.day.lower()
        if day == "everyday":
            return True
        if day == "weekdays":
            return weekday < 5
        if day in ("weekend", "weekends"):
            return weekday > 4
        return day == _DAYS[weekday].lower()


ALWAYS = (ExecutionWindow("Everyday", dtime(0, 0), dtime(23, 59, 59)),)


@dataclass(frozen=True)
class DeviceInfo:
    """A device's capabilities and current state, as the resource manager needs them.

    Attributes:
        arn: device ARN, or ``local:sv`` / ``local:dm``.
        name: display name.
        provider: provider name (``Amazon Braket``, ``IonQ``, ``local``).
        device_type: ``QPU``, ``SIMULATOR`` (managed) or ``LOCAL``.
        status: ``ONLINE``, ``OFFLINE``, ``RETIRED`` or ``PAUSED``.
        qubit_count: qubits the device offers.
        operations: OpenQASM gate (and noise) names it accepts, lower-case.
        supports_noise: accepts noise channels (density-matrix simulators).
        fully_connected: any qubit pair can interact directly.
        connectivity: qubit -> neighbours, when not fully connected.
        shots_range: (min, max) shots per task.
        windows: execution windows; a device runs tasks only inside one.
        queue_depth: quantum tasks waiting (normal priority), when known.
        native_gates: the device's native gate set, for information.
    """

    arn: str
    name: str
    provider: str
    device_type: str
    status: str
    qubit_count: int
    operations: frozenset[str]
    supports_noise: bool
    fully_connected: bool
    connectivity: dict[int, frozenset[int]] = field(default_factory=dict)
    shots_range: tuple[int, int] = (0, 1_000_000)
    windows: tuple[ExecutionWindow, ...] = ALWAYS
    queue_depth: int | None = None
    native_gates: tuple[str, ...] = ()

    @property
    def is_qpu(self) -> bool:
        return self.device_type == "QPU"

    @property
    def is_local(self) -> bool:
        return self.device_type == "LOCAL"

    def in_window(self, at: datetime | None = None) -> bool:
        """Whether ``at`` (default: now) is inside one of the device's execution windows."""
        at = at or datetime.now(UTC)
        return any(w.contains(at) for w in self.windows)

    def unavailable_reason(self, at: datetime | None = None) -> str | None:
        """Why the device cannot take a task now (offline, outside its window), else None."""
        if self.status != "ONLINE":
            return f"device {self.name} is {self.status}"
        if not self.in_window(at):
            return f"device {self.name} is outside its execution windows ({_describe(self.windows)})"
        return None

    def connected(self, a: int, b: int) -> bool:
        """Whether qubits ``a`` and ``b`` can interact without routing."""
        return self.fully_connected or b in self.connectivity.get(a, ()) or a in self.connectivity.get(b, ())

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> DeviceInfo:
        """Build from a GetDevice response (``deviceCapabilities`` is a JSON string)."""
        caps = meta.get("deviceCapabilities") or {}
        if isinstance(caps, str):
            caps = json.loads(caps)
        paradigm = caps.get("paradigm") or {}
        service = caps.get("service") or {}
        program = (caps.get("action") or {}).get("braket.ir.openqasm.program") or {}
        ops = frozenset(op.lower() for op in program.get("supportedOperations") or ())
        pragmas = program.get("supportedPragmas") or ()
        connectivity = paradigm.get("connectivity") or {}
        graph = {
            int(q): frozenset(int(n) for n in nbrs)
            for q, nbrs in (connectivity.get("connectivityGraph") or {}).items()
        }
        device_type = meta.get("deviceType", "SIMULATOR")
        shots = service.get("shotsRange") or (0, 1_000_000)
        return cls(
            arn=meta["deviceArn"],
            name=meta.get("deviceName", meta["deviceArn"]),
            provider=meta.get("providerName", ""),
            device_type=device_type,
            status=meta.get("deviceStatus", "ONLINE"),
            qubit_count=int(paradigm.get("qubitCount", 0)),
            operations=ops,
            supports_noise=any(p.startswith("braket_noise_") for p in pragmas),
            # Simulators have no connectivity section: any pair interacts.
            fully_connected=bool(connectivity.get("fullyConnected", device_type != "QPU")),
            connectivity=graph,
            shots_range=(int(shots[0]), int(shots[1])),
            windows=tuple(_window(w) for w in service.get("executionWindows") or ()) or ALWAYS,
            queue_depth=_queue_depth(meta.get("deviceQueueInfo") or ()),
            native_gates=tuple(paradigm.get("nativeGateSet") or ()),
        )


def _window(raw: dict[str, Any]) -> ExecutionWindow:
    return ExecutionWindow(
        str(raw["executionDay"]),
        dtime.fromisoformat(str(raw["windowStartHour"])),
        dtime.fromisoformat(str(raw["windowEndHour"])),
    )


def _describe(windows: Iterable[ExecutionWindow]) -> str:
    return ", ".join(f"{w.day} {w.start:%H:%M}-{w.end:%H:%M} UTC" for w in windows)


def _queue_depth(entries: Iterable[dict[str, Any]]) -> int | None:
    for entry in entries:
        if entry.get("queue") == "QUANTUM_TASKS_QUEUE" and entry.get("queuePriority", "Normal") == "Normal":
            size = str(entry.get("queueSize", "0"))
            # Braket caps the figure as ">4000".
            return int(size.lstrip(">")) + (1 if size.startswith(">") else 0)
    return None


def _local(arn: str, name: str, qubits: int, noise: bool) -> DeviceInfo:
    from braket.default_simulator import DensityMatrixSimulator, StateVectorSimulator

    sim = DensityMatrixSimulator() if noise else StateVectorSimulator()
    ops = sim.properties.action["braket.ir.openqasm.program"].supportedOperations
    return DeviceInfo(
        arn=arn,
        name=name,
        provider="local",
        device_type="LOCAL",
        status="ONLINE",
        qubit_count=qubits,
        operations=frozenset(o.lower() for o in ops),
        supports_noise=noise,
        fully_connected=True,
        shots_range=(0, 10_000_000),
        queue_depth=0,
    )


def local_device(name: str) -> DeviceInfo:
    """``DeviceInfo`` for ``local:sv`` or ``local:dm``.

    Raises:
        InputError: any other ``local:`` name.
    """
    if name == LOCAL_SV:
        return _local(LOCAL_SV, "LocalSimulator (state vector)", LOCAL_DEVICE_QUBITS[LOCAL_SV], False)
    if name == LOCAL_DM:
        return _local(LOCAL_DM, "LocalSimulator (density matrix)", LOCAL_DEVICE_QUBITS[LOCAL_DM], True)
    raise InputError(f"unknown local device '{name}'; use local:sv or local:dm", field="device")


class DeviceCatalog:
    """Device metadata from Braket (GetDevice / SearchDevices), cached for ``ttl`` seconds.

    Args:
        session_for: region (or None for the default) -> ``AwsSession``; injectable for tests.
        ttl: seconds a device's metadata is reused before it is fetched again.
        retry: retries of throttled / failed calls.
    """

    def __init__(
        self,
        *,
        session_for: Callable[[str | None], AwsSession] = braket_session,
        ttl: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._session_for = session_for
        self._retry = retry or RetryPolicy()
        self._ttl = ttl
        self._cache: dict[str, tuple[float, DeviceInfo]] = {}
        self._lock = threading.Lock()

    def get(self, arn: str, *, refresh: bool = False) -> DeviceInfo:
        """Metadata for one device (local names included).

        Raises:
            InputError: Braket does not know ``arn``.
            TransientError: Braket could not be reached or throttled the call (after retries).
        """
        if arn.startswith("local:"):
            return local_device(arn)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(arn)
        if hit and not refresh and now - hit[0] < self._ttl:
            return hit[1]
        session = self._session_for(device_region(arn))

        def fetch() -> dict[str, Any]:
            try:
                return session.get_device(arn)
            except ClientError as exc:
                if error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
                    raise InputError(
                        f"unknown Braket device '{arn}'; check the ARN (see `aws braket "
                        f"search-devices` or the Braket console)",
                        field="device",
                    ) from None
                raise

        meta = self._retry.call(fetch, f"GetDevice {arn}")
        info = DeviceInfo.from_metadata(meta)
        with self._lock:
            self._cache[arn] = (now, info)
        return info

    def search(self, *, statuses: Iterable[str] | None = None) -> list[DeviceInfo]:
        """Every managed device the account sees (full metadata for each)."""
        wanted = set(statuses) if statuses else None
        summaries = self._retry.call(self._session_for(None).search_devices, "SearchDevices")
        return [self.get(s["deviceArn"]) for s in summaries if wanted is None or s["deviceStatus"] in wanted]

    def invalidate(self, arn: str | None = None) -> None:
        """Forget cached metadata (one device, or all)."""
        with self._lock:
            if arn is None:
                self._cache.clear()
            else:
                self._cache.pop(arn, None)
