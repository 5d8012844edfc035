"""The fake Braket service's state and behaviour, independent of HTTP.

Tasks wait in QUEUED for a configurable delay, then run their OpenQASM on the local simulator
(``braket.default_simulator``, the engine ``braket.devices.LocalSimulator`` runs) and write
``results.json`` to S3 (moto's server) before they report COMPLETED, as Braket does. A QPU's
tasks run on the density-matrix simulator with the noise of its published calibration
(:mod:`tests.support.fake_noise`); the simulators' are ideal.
"""

from __future__ import annotations

import heapq
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, NoReturn

import boto3

from tests.support.fake_devices import FakeDevice, default_devices
from tests.support.fake_noise import MAX_NOISY_QUBITS, Calibration, noisy

ACCOUNT = "123456789012"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
# Simulating more qubits than this on a laptop would hang the fake; real SV1 would run them.
MAX_SIMULATED_QUBITS = 20


class ApiError(Exception):
    """An error the HTTP layer turns into Braket's wire format."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Faults:
    """Failure injection, changeable at run time (admin endpoint or attribute).

    Attributes:
        throttle_probability: chance any Braket call gets 429 ThrottlingException.
        error_probability: chance any Braket call gets 500 InternalServiceException.
        lost_response_probability: chance CreateQuantumTask creates the task, then answers 500.
        create_response_delay: seconds CreateQuantumTask waits after creating a task before answering
            (a window in which a test kills the worker that asked).
        create_rate: CreateQuantumTask quota in requests/s (None: unlimited); above it, 429.
        create_burst: quota burst (default 2x rate, as Braket's 20/s burst 40).
        fail_probability: chance a task ends FAILED instead of COMPLETED.
        fail_next: the next this-many tasks to finish end FAILED (deterministic, for tests).
        queue_delay: seconds a task waits in QUEUED (devices may override).
        run_time: seconds a task spends RUNNING.
        billed_duration_ms: simulator duration reported in the result (None: measured).
        max_concurrent_simulator_tasks: open SV1/DM1 tasks per device before 402 (None: unlimited).
        seed: RNG seed for reproducible injection.
    """

    throttle_probability: float = 0.0
    error_probability: float = 0.0
    lost_response_probability: float = 0.0
    create_response_delay: float = 0.0
    create_rate: float | None = None
    create_burst: float | None = None
    fail_probability: float = 0.0
    fail_next: int = 0
    queue_delay: float = 0.05
    run_time: float = 0.0
    billed_duration_ms: int | None = None
    max_concurrent_simulator_tasks: int | None = None
    seed: int | None = None


@dataclass
class FakeTask:
    arn: str
    device_arn: str
    token: str
    shots: int
    action: str
    device_parameters: str
    bucket: str
    directory: str
    created: datetime
    status: str = "QUEUED"
    ended: datetime | None = None
    failure_reason: str | None = None
    duration_ms: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class FakeBraket:
    """The service: devices, tasks, idempotency tokens, counters and injected faults.

    Args:
        s3_endpoint: where results are written (moto server URL); default ``$AWS_ENDPOINT_URL_S3``.
        region: region of the service (task ARNs take the caller's signing region when known).
    """

    def __init__(self, *, s3_endpoint: str | None = None, region: str = "us-east-1") -> None:
        self.region = region
        self._s3_endpoint = s3_endpoint
        self._s3: Any = None
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self.reset()
        self._runner = threading.Thread(target=self._run_loop, name="fake-braket-runner", daemon=True)
        self._runner.start()

    # -- admin --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget tasks and counters; restore default devices and faults."""
        with self._lock:
            self.devices: dict[str, FakeDevice] = default_devices()
            self.tasks: dict[str, FakeTask] = {}
            self.tokens: dict[str, str] = {}
            self.faults = Faults()
            self.created_total = 0
            self.created_per_token: Counter[str] = Counter()
            self.requests: Counter[str] = Counter()
            self.errors: Counter[str] = Counter()
            self.create_times: list[float] = []
            #: what the service bills, per COMPLETED task: {device, shots, duration_ms (simulators)}
            self.billed: dict[str, dict[str, Any]] = {}
            self._rng = random.Random()
            self._bucket = (0.0, time.monotonic())
            self._schedule: list[tuple[float, int, str]] = []
            self._seq = 0

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change fault settings by name; unknown names are an error (not silently ignored)."""
        names = {f.name for f in fields(Faults)}
        unknown = set(changes) - names
        if unknown:
            raise ApiError(
                400,
                "ValidationException",
                f"unknown fault settings {sorted(unknown)}; known: {sorted(names)}",
            )
        with self._lock:
            for name, value in changes.items():
                setattr(self.faults, name, value)
            if "seed" in changes:
                self._rng = random.Random(changes["seed"])
            if "create_rate" in changes or "create_burst" in changes:
                self._bucket = (self._burst(), time.monotonic())
            return asdict(self.faults)

    def set_device(self, key: str, **changes: Any) -> dict[str, Any]:
        """Change a device (by ARN or name): ``status``, ``windows``, ``extra_queue``, ``queue_delay``,
        ``calibration`` (None: it publishes none; or the fields of a ``Calibration``)."""
        with self._lock:
            device = self.devices.get(key) or next((d for d in self.devices.values() if d.name == key), None)
            if device is None:
                raise ApiError(404, "ResourceNotFoundException", f"no fake device {key}")
            allowed = {"status", "windows", "extra_queue", "queue_delay", "calibration"}
            if set(changes) - allowed:
                raise ApiError(400, "ValidationException", f"device settings are {sorted(allowed)}")
            for name, value in changes.items():
                setattr(device, name, Calibration(**value) if name == "calibration" and value else value)
            return device.summary()

    def stats(self) -> dict[str, Any]:
        """Counters for tests: tasks created (total and per clientToken), requests and errors by kind."""
        with self._lock:
            return {
                "created_total": self.created_total,
                "created_per_token": dict(self.created_per_token),
                "requests": dict(self.requests),
                "errors": dict(self.errors),
                "tasks": {arn: t.status for arn, t in self.tasks.items()},
                "create_times": list(self.create_times),
                "billed": dict(self.billed),
                "tokens": {arn: t.token for arn, t in self.tasks.items()},
            }

    # -- Braket operations --------------------------------------------------------------------

    def before_call(self, operation: str) -> None:
        """Count the call and apply random throttling / 5xx."""
        with self._lock:
            self.requests[operation] += 1
            if self._rng.random() < self.faults.throttle_probability:
                self._error(429, "ThrottlingException", "Rate exceeded (injected)")
            if self._rng.random() < self.faults.error_probability:
                self._error(500, "InternalServiceException", "Internal service error (injected)")

    def create_task(self, body: dict[str, Any], region: str | None) -> str:
        with self._lock:
            self._take_quota()
            token = body.get("clientToken") or str(uuid.uuid4())
            if token in self.tokens:  # idempotent: the same request answered again
                return self.tokens[token]
            device = self.devices.get(body.get("deviceArn", ""))
            if device is None:
                self._error(400, "ValidationException", f"device {body.get('deviceArn')} not found")
            if device.status != "ONLINE":
                self._error(424, "DeviceOfflineException", f"device {device.name} is {device.status}")
            shots = int(body.get("shots", 0))
            low, high = device.shots_range
            if not low <= shots <= high:
                self._error(
                    400, "ValidationException", f"shots {shots} outside [{low}, {high}] for {device.name}"
                )
            action = body.get("action") or "{}"
            width = _qubits(json.loads(action).get("source", ""))
            if width > device.qubits:
                self._error(
                    400,
                    "ValidationException",
                    f"circuit uses {width} qubits; {device.name} has {device.qubits}",
                )
            limit = self.faults.max_concurrent_simulator_tasks
            if limit is not None and device.device_type == "SIMULATOR":
                open_tasks = sum(
                    1 for t in self.tasks.values() if t.device_arn == device.arn and t.status not in TERMINAL
                )
                if open_tasks >= limit:
                    self._error(
                        402,
                        "ServiceQuotaExceededException",
                        f"{open_tasks} concurrent tasks on {device.name}",
                    )
            task_region = device.arn.split(":")[3] or region or self.region
            task_id = str(uuid.uuid4())
            arn = f"arn:aws:braket:{task_region}:{ACCOUNT}:quantum-task/{task_id}"
            self.tasks[arn] = FakeTask(
                arn=arn,
                device_arn=device.arn,
                token=token,
                shots=shots,
                action=action,
                device_parameters=body.get("deviceParameters") or "{}",
                bucket=body["outputS3Bucket"],
                directory=f"{body['outputS3KeyPrefix'].rstrip('/')}/{task_id}",
                created=datetime.now(UTC),
                tags=body.get("tags") or {},
            )
            self.tokens[token] = arn
            self.created_total += 1
            self.created_per_token[token] += 1
            self.create_times.append(time.time())
            delay = device.queue_delay if device.queue_delay is not None else self.faults.queue_delay
            self._at(time.monotonic() + delay, arn)
            if self._rng.random() < self.faults.lost_response_probability:
                self._error(500, "InternalServiceException", "Internal service error after create (injected)")
            pause = self.faults.create_response_delay
        if pause:
            time.sleep(pause)  # outside the lock: other requests go on
        return arn

    def get_task(self, arn: str, queue_info: bool) -> dict[str, Any]:
        with self._lock:
            task = self._task(arn)
            out: dict[str, Any] = {
                "quantumTaskArn": arn,
                "status": task.status,
                "deviceArn": task.device_arn,
                "deviceParameters": task.device_parameters,
                "shots": task.shots,
                "outputS3Bucket": task.bucket,
                "outputS3Directory": task.directory,
                "createdAt": _iso(task.created),
                "tags": task.tags,
            }
            if task.ended:
                out["endedAt"] = _iso(task.ended)
            if task.failure_reason:
                out["failureReason"] = task.failure_reason
            if queue_info:
                position = self._queue_position(task)
                out["queueInfo"] = {
                    "queue": "QUANTUM_TASKS_QUEUE",
                    "queuePriority": "Normal",
                    "position": str(position) if position is not None else "None",
                }
                if position is None:
                    out["queueInfo"]["message"] = "Task is not in the queue."
            return out

    def cancel_task(self, arn: str) -> str:
        with self._lock:
            task = self._task(arn)
            if task.status in ("COMPLETED", "FAILED"):
                self._error(409, "ConflictException", f"task is {task.status}; it cannot be cancelled")
            if task.status not in ("CANCELLING", "CANCELLED"):
                task.status = "CANCELLING"
                self._at(time.monotonic(), arn)
            return task.status

    def get_device(self, arn: str) -> dict[str, Any]:
        with self._lock:
            device = self.devices.get(arn)
            if device is None:
                self._error(404, "ResourceNotFoundException", f"device {arn} not found")
            queued = sum(1 for t in self.tasks.values() if t.device_arn == arn and t.status == "QUEUED")
            return {
                **device.summary(),
                "deviceCapabilities": json.dumps(device.capabilities()),
                "deviceQueueInfo": [
                    {
                        "queue": "QUANTUM_TASKS_QUEUE",
                        "queuePriority": "Normal",
                        "queueSize": str(queued + device.extra_queue),
                    },
                    {"queue": "QUANTUM_TASKS_QUEUE", "queuePriority": "Priority", "queueSize": "0"},
                    {"queue": "JOBS_QUEUE", "queueSize": "0"},
                ],
            }

    def search_devices(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            wanted: set[str] | None = None
            for flt in body.get("filters") or ():
                if flt.get("name") == "deviceArn":
                    wanted = set(flt.get("values") or ())
            return {
                "devices": [d.summary() for d in self.devices.values() if wanted is None or d.arn in wanted]
            }

    # -- internals ----------------------------------------------------------------------------

    def _error(self, status: int, code: str, message: str) -> NoReturn:
        self.errors[code] += 1
        raise ApiError(status, code, message)

    def _task(self, arn: str) -> FakeTask:
        task = self.tasks.get(arn)
        if task is None:
            self._error(404, "ResourceNotFoundException", f"quantum task {arn} not found")
        return task

    def _burst(self) -> float:
        rate = self.faults.create_rate or 0.0
        return self.faults.create_burst if self.faults.create_burst is not None else 2 * rate

    def _take_quota(self) -> None:
        rate = self.faults.create_rate
        if rate is None:
            return
        tokens, last = self._bucket
        now = time.monotonic()
        tokens = min(self._burst(), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._bucket = (tokens, now)
            self._error(429, "ThrottlingException", "Rate exceeded for CreateQuantumTask")
        self._bucket = (tokens - 1.0, now)

    def _queue_position(self, task: FakeTask) -> int | None:
        if task.status != "QUEUED":
            return None
        ahead = [
            t
            for t in self.tasks.values()
            if t.device_arn == task.device_arn and t.status == "QUEUED" and t.created < task.created
        ]
        return len(ahead) + 1 + self.devices[task.device_arn].extra_queue

    def _at(self, due: float, arn: str) -> None:
        self._seq += 1
        heapq.heappush(self._schedule, (due, self._seq, arn))
        self._wake.notify()

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._wake.notify()

    def _run_loop(self) -> None:
        while True:
            with self._lock:
                while not self._stop and (not self._schedule or self._schedule[0][0] > time.monotonic()):
                    timeout = self._schedule[0][0] - time.monotonic() if self._schedule else None
                    self._wake.wait(timeout)
                if self._stop:
                    return
                _, _, arn = heapq.heappop(self._schedule)
                task = self.tasks.get(arn)
                if task is None:
                    continue
                if task.status == "CANCELLING":
                    task.status, task.ended = "CANCELLED", datetime.now(UTC)
                    continue
                if task.status == "QUEUED":
                    task.status = "RUNNING"
                    self._at(time.monotonic() + self.faults.run_time, arn)
                    continue
                if task.status != "RUNNING":
                    continue
                fail = self._rng.random() < self.faults.fail_probability or self.faults.fail_next > 0
                if self.faults.fail_next > 0:
                    self.faults.fail_next -= 1
                device = self.devices[task.device_arn]
                billed_ms = self.faults.billed_duration_ms
            self._finish(task, device, fail, billed_ms)

    def _finish(self, task: FakeTask, device: FakeDevice, fail: bool, billed_ms: int | None) -> None:
        # Simulation and the S3 upload happen outside the lock: API calls keep being answered.
        reason = "Task failed (injected)" if fail else None
        if not fail:
            try:
                self._simulate_and_upload(task, device, billed_ms)
            except Exception as exc:  # noqa: BLE001 - a bad program fails its task, as on Braket
                reason = f"{type(exc).__name__}: {exc}"[:500]
        with self._lock:
            if task.status == "CANCELLING":
                task.status = "CANCELLED"
            else:
                task.status, task.failure_reason = ("FAILED", reason) if reason else ("COMPLETED", None)
            task.ended = datetime.now(UTC)
            if task.status == "COMPLETED":
                self.billed[task.arn] = {
                    "device": task.device_arn,
                    "shots": task.shots,
                    "duration_ms": task.duration_ms if device.device_type == "SIMULATOR" else None,
                }

    def _simulate_and_upload(self, task: FakeTask, device: FakeDevice, billed_ms: int | None) -> None:
        from braket.default_simulator import DensityMatrixSimulator, StateVectorSimulator
        from braket.ir.openqasm import Program
        from braket.task_result import SimulatorMetadata, TaskMetadata

        program = Program.parse_raw(task.action)
        width = _qubits(program.source)
        if width > MAX_SIMULATED_QUBITS:
            raise RuntimeError(f"the fake simulates at most {MAX_SIMULATED_QUBITS} qubits")
        backend = device.backend
        if device.calibration is not None and width <= MAX_NOISY_QUBITS:  # a QPU: its published noise
            program = program.copy(update={"source": noisy(program.source, device.calibration)})
            backend = "dm"
        simulator = DensityMatrixSimulator() if backend == "dm" else StateVectorSimulator()
        started = time.perf_counter()
        result = simulator.run(program, shots=task.shots)
        measured_ms = int((time.perf_counter() - started) * 1000)
        result.taskMetadata = TaskMetadata(
            id=task.arn,
            shots=task.shots,
            deviceId=task.device_arn,
            createdAt=_iso(task.created),
            endedAt=_iso(datetime.now(UTC)),
            status="COMPLETED",
        )
        if device.device_type == "SIMULATOR":
            duration = billed_ms if billed_ms is not None else measured_ms
            task.duration_ms = duration
            result.additionalMetadata.simulatorMetadata = SimulatorMetadata(executionDuration=duration)
        else:
            result.additionalMetadata.simulatorMetadata = None
        if self._s3 is None:  # only the runner thread uploads; boto3 clients are thread-safe anyway
            self._s3 = boto3.client("s3", endpoint_url=self._s3_endpoint)
        self._s3.put_object(
            Bucket=task.bucket, Key=f"{task.directory}/results.json", Body=result.json().encode()
        )


_REGISTER = re.compile(r"qubit\[(\d+)\]")
_PHYSICAL = re.compile(r"\$(\d+)")


def _qubits(source: str) -> int:
    declared = sum(int(n) for n in _REGISTER.findall(source))
    physical = [int(n) for n in _PHYSICAL.findall(source)]
    return max(declared, max(physical, default=-1) + 1)
