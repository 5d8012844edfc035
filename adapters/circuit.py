"""Circuit projects: the project builds a circuit and analyses its result; the orchestrator runs it.

Because the device is the orchestrator's choice (``spec.device``), one project moves between the
local simulators and managed Braket devices without edits. Local devices run here; a managed
device (an ARN) runs through a *device runner* that the Braket worker injects::

    def device_runner(program, shots: int, device: str) -> result   # e.g. AwsDevice(device).run(...)

``program`` is a ``braket.circuits.Circuit`` (free parameters already bound) or a
``braket.ir.openqasm.Program``; the result must be what ``LocalSimulator(...).run(...).result()``
returns for the same program (a ``GateModelQuantumTaskResult``), so ``analyze`` cannot tell
the difference.
"""

from __future__ import annotations

import contextlib
from typing import Any

from adapters import runner
from adapters.base import ProjectAdapter
from adapters.contract import RunContext
from adapters.environment import Environment
from adapters.noise import noisy_program
from adapters.source import module_defines, reading_source_only
from core.errors import ConfigurationError, InputError
from core.project import AUTO, CircuitSpec

LOCAL_DEVICES = ("local:sv", "local:dm")
DEFAULT_DEVICE = "local:sv"


class CircuitAdapter(ProjectAdapter):
    """``circuit: {build: module:func, analyze: module:func}``, run on ``spec.device``.

    Constructed as every adapter (:class:`~adapters.base.ProjectAdapter`); ``environments`` is
    unused (circuit projects run in the worker's interpreter, which has the Braket SDK), and
    ``device_runner`` runs a program on a managed device (see the module docstring).
    """

    kind = "circuit"
    options_field = "circuit"  # detected by its options only: no entry to tell it by

    @property
    def options(self) -> CircuitSpec:
        if self.spec.circuit is None:
            raise ConfigurationError(
                f"project '{self.spec.name}': a circuit project needs "
                f"circuit: {{build: module:function, analyze: module:function}}"
            )
        return self.spec.circuit

    @property
    def device(self) -> str:
        if self.spec.device == AUTO and self.spec.device_choice is None:
            return DEFAULT_DEVICE  # device: auto before a sweep chose: a dry run, on the free simulator
        return self.spec.device or DEFAULT_DEVICE

    def environment(self) -> Environment | None:
        if self.spec.python or self.spec.requirements:
            raise ConfigurationError(
                f"project '{self.spec.name}': circuit projects run in the worker's "
                f"interpreter, where the Braket SDK is; remove 'python'/'requirements', or "
                f"make it a callable project that runs the circuit itself"
            )
        return None

    def entry_text(self) -> str:
        opts = self.spec.circuit
        if opts is None:
            return ""
        return (
            f"build {opts.build}"
            + (f", analyze {opts.analyze}" if opts.analyze else "")
            + f" on {self.device}"
        )

    def signature(self) -> None:
        if reading_source_only():
            for entry in (self.options.build, self.options.analyze):
                module, _, name = (entry or "").partition(":")
                if entry and module_defines(self.root, module, name) is False:
                    raise ConfigurationError(
                        f"project '{self.spec.name}': module '{module}' defines no '{name}'; "
                        "fix circuit.build / circuit.analyze"
                    )
        else:
            self._load_entries()
        if self.device not in (*LOCAL_DEVICES, AUTO) and self.device_runner is None:
            raise self._managed_device_error()
        return None  # build takes the whole params mapping: the dry run checks what it reads

    def _load_entries(self) -> None:
        with self._inline():
            self._load(self.options.build)
            if self.options.analyze:
                self._load(self.options.analyze)

    def session(self) -> contextlib.AbstractContextManager[None]:
        return self._loaded()

    def _run(self, params: dict[str, Any], ctx: RunContext) -> Any:
        opts = self.options
        self.environment()  # refuses a project interpreter, which could not run the circuit here
        shots = int(params.get(opts.shots_param, opts.default_shots))
        ctx.device, ctx.extra["shots"] = self.device, shots
        if self.spec.noise is not None:
            ctx.extra["noise"] = self.spec.noise.model_dump()  # the calibration snapshot simulated
        if (choice := self.device_choice(params)) is not None:
            ctx.extra["device_choice"] = choice
        if self.device == AUTO:
            raise ConfigurationError(
                f"project '{self.spec.name}': device: auto chose no device for {params}: the sweep "
                f"checked no circuit with these parameters at submit; submit the sweep again"
            )
        if self.device not in LOCAL_DEVICES and self.device_runner is None:
            raise self._managed_device_error()
        with self._inline(), self._capture(ctx.log):  # the import lock first: one capture at a time
            built = self._load(opts.build)(params)
            program, inputs = built if isinstance(built, tuple) else (built, {})
            program, inputs = self._noisy(_as_program(program, inputs), inputs)
            result = self._execute(program, shots, inputs)
            if opts.analyze:
                return self._load(opts.analyze)(result, params)
        return measured_probabilities(result)

    # -- the two halves, for executors that run the circuit elsewhere (managed Braket devices) --

    def build_program(self, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """``(program, inputs)`` for ``params`` (as the entry takes them: fixed ones merged, names
        renamed), built in the project folder."""
        merged = self.spec.arguments(params)
        with self._inline():
            built = self._load(self.options.build)(merged)
        program, inputs = built if isinstance(built, tuple) else (built, {})
        return self._noisy(_as_program(program, inputs), dict(inputs))

    def analyze(self, result: Any, params: dict[str, Any]) -> dict[str, float]:
        """Metrics of a finished task's result, standardized like any other run's."""
        merged = self.spec.arguments(params)
        if not self.options.analyze:
            return measured_probabilities(result)
        with self._inline():
            raw = self._load(self.options.analyze)(result, merged)
        return self.extract_metrics(raw)

    def device_choice(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """What ``device: auto`` chose for the circuit of ``params`` and why (a row's
        ``extra.device_choice``), or None for a named device."""
        choice = self.spec.device_choice
        shape = choice.shape_for({**self.spec.fixed, **params}) if choice else None
        return shape.model_dump() if shape and shape.device == self.device else None

    def shots(self, params: dict[str, Any]) -> int:
        return int(self.spec.arguments(params).get(self.options.shots_param, self.options.default_shots))

    def _noisy(self, program: Any, inputs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The program with the channels of ``spec.noise`` (a ladder rung's ``noise: device``)."""
        if (cal := self.spec.noise) is None:
            return program, inputs
        if self.device != "local:dm" and not self.device.endswith("/dm1"):
            raise ConfigurationError(
                f"project '{self.spec.name}': the noise of {cal.device} is simulated on a density-matrix "
                f"simulator, not {self.device}; run this rung on local:dm or DM1"
            )
        return noisy_program(program, inputs, cal)

    def _execute(self, program: Any, shots: int, inputs: dict[str, Any]) -> Any:
        if self.device_runner is not None:
            if inputs and hasattr(program, "make_bound_circuit"):
                program = program.make_bound_circuit(inputs)
            return self.device_runner(program, shots, self.device)
        # The one local-simulator path, shared with the Braket executors' local failover.
        from adapters.simulator import as_quantum_task_result, run_local

        try:
            return as_quantum_task_result(run_local(program, shots, self.device, inputs=inputs or None))
        except (InputError, TypeError, ValueError, NotImplementedError) as exc:
            hint = " (noisy circuits need device local:dm)" if "noise" in str(exc).lower() else ""
            raise ConfigurationError(
                f"project '{self.spec.name}': device {self.device} rejected the circuit: "
                f"{exc}{hint}; fix the circuit or the project's 'device'"
            ) from exc

    def _managed_device_error(self) -> ConfigurationError:
        return ConfigurationError(
            f"project '{self.spec.name}': device {self.device} is a managed Braket device, which only the "
            f"braket_sim/braket_qpu workers can run; set the project's resource to braket_sim or braket_qpu, "
            f"or use device local:sv or local:dm"
        )

    def _entry_error(self, exc: runner.EntryError) -> ConfigurationError:
        return ConfigurationError(
            f"project '{self.spec.name}': {exc}".replace("fix 'entry'", "fix circuit.build / circuit.analyze")
        )


def _as_program(program: Any, inputs: dict[str, Any]) -> Any:
    if isinstance(program, str):
        from braket.ir.openqasm import Program

        return Program(source=program, inputs=inputs or None)
    return program


def measured_probabilities(result: Any) -> dict[str, float]:
    """The default analysis: the observed frequency of each bitstring, as ``p_<bits>``."""
    counts = getattr(result, "measurement_counts", None) or {}
    total = sum(counts.values())
    return {f"p_{bits}": n / total for bits, n in sorted(counts.items())} if total else {}
