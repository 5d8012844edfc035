"""How a sweep file describes one project. Owned by the adapters; embedded in the sweep config.

Every model rejects unknown keys, so a misspelt option fails loudly at load time instead of
being ignored. The per-kind options live in nested models (``class``, ``command``,
``circuit``) so a project entry only carries what its kind needs::

    - {name: bell, path: ../projects/bell, entry: "bell:run"}                 # callable
    - name: vqe                                                               # class
      path: ../projects/vqe_h2
      entry: "vqe:H2VQE"
      class: {method: energy, constructor: [bond_length, shots]}
      requirements: requirements.txt        # default: found in the folder; false: never
    - {name: study, path: ../study, entry: "study:run", config_arg: cfg}     # run(cfg): one mapping
    - {name: legacy, path: ../legacy, entry: "sim:run", rename: {gamma: angle}}  # run(angle=...)
    - name: outside                                                           # Experiment(config).run()
      path: ../outside
      entry: "experiment:Experiment"
      class: {config_arg: config}
    - name: rep                                                               # command
      path: ../projects/repetition_code
      entry: python repetition.py --noise {noise} --csv {run_dir}/out.csv
      command: {output_file: "{run_dir}/out.csv"}
      timeout: 60
    - name: qaoa                                                              # circuit
      path: ../projects/qaoa_maxcut
      circuit: {build: "qaoa:build", analyze: "qaoa:analyze"}
      device: local:sv
      standardize: {fidelity: [approx_ratio], probabilities: [p_optimal]}

An entry that takes its whole configuration as one mapping (``run(cfg)``, ``Experiment(config)``)
gets the swept and fixed parameters as one ``dict`` through ``config_arg`` (``class.config_arg``
for a class: the constructor's or the method's parameter, whichever has that name). Without the
option a lone parameter named ``params`` or annotated as a mapping (``dict``, ``Mapping``,
``dict[str, Any]``) gets it too. Nested results, such as a dataclass holding a dataclass, are read
with dotted paths in ``metrics`` (``energy: result.energy.value``). An entry whose arguments are
named otherwise than the sweep's parameters takes them through ``rename`` (sweep name ->
argument name), which applies to every kind (a command's placeholders are the argument names).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from core.devices import (
    AUTO,
    FIDELITY,
    Calibration,
    DeviceChoice,
    PromoteSpec,
    Resource,
    Rung,
    is_managed,
)

#: the kinds a sweep file may name: a Literal, so that a misspelt kind is refused at load with
#: the file, line and choices. Each has one adapter in the registry, ``adapters/kinds.py``
#: (core imports no adapter; ``tests/adapters/test_kinds.py`` checks that the two agree).
Kind = Literal["auto", "callable", "class", "command", "circuit"]


_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassSpec(_Strict):
    """A project written as an experiment class: ``entry: module:Class``.

    Attributes:
        method: the method called on the instance with the remaining parameters.
        constructor: the parameters passed to the constructor; ``None`` splits them by the
            signatures (names the method accepts go to the method, the rest to the constructor).
        config_arg: the parameter of the constructor or of the method that takes all parameters
            (swept and fixed) as one mapping, e.g. ``config`` for ``__init__(self, config)``.
    """

    method: str = "run"
    constructor: list[str] | None = None
    config_arg: str | None = Field(None, pattern=_IDENTIFIER)


class CommandSpec(_Strict):
    """A command-line project: ``entry`` is the command template, e.g. ``python run.py --gamma {gamma}``.

    Placeholders are the parameters plus ``{run_dir}`` (a fresh folder per run), ``{project_dir}``,
    ``{params_file}`` and ``{python}`` (the project's interpreter). A leading ``python`` or
    ``python3`` is replaced by the project's interpreter too, and a leading ``script.py`` of the
    project folder is run with it.

    Attributes:
        shell: run through ``/bin/sh`` (pipes, redirections); values are shell-quoted.
        env: also pass every parameter as an environment variable ``<env_prefix><NAME>``.
        env_prefix: prefix of those variables.
        params_file: write the parameters to this file (``.json`` or ``.yaml``) in the run folder;
            its path is ``{params_file}`` and ``$ORCHESTRATOR_PARAMS_FILE``.
        cwd: working directory: the project folder or the per-run folder.
        output_file: read metrics from this JSON/CSV/YAML file (relative to ``cwd``) instead of
            stdout; placeholders allowed. CSV: the last row's numeric columns.
        output_format: the file's format when its suffix does not tell.
        regex: metric name -> regular expression over stdout whose first group is the value.
    """

    shell: bool = False
    env: bool = False
    env_prefix: str = ""
    params_file: str | None = Field(None, pattern=r"\.(json|ya?ml)$")
    cwd: Literal["project", "run"] = "project"
    output_file: str | None = None
    output_format: Literal["json", "csv", "yaml"] | None = None
    regex: dict[str, str] = Field(default_factory=dict)


class CircuitSpec(_Strict):
    """A circuit project: the orchestrator runs the circuit on the device the sweep assigns.

    Attributes:
        build: ``module:function(params) -> braket Circuit | OpenQASM str`` (optionally a
            ``(circuit, inputs)`` pair for free parameters).
        analyze: ``module:function(result, params) -> metrics``; ``None`` reports the measured
            probability of each bitstring as ``p_<bits>``.
        shots_param: the parameter holding the shot count.
        default_shots: shots when the parameters do not name any.
    """

    build: str
    analyze: str | None = None
    shots_param: str = "shots"
    default_shots: int = Field(1000, ge=0)


class BaselineSpec(_Strict):
    """A baseline for ``<metric>_rel_improvement``: a fixed value or another metric of the result."""

    value: float | None = None
    metric: str | None = None
    goal: Literal["maximize", "minimize"] = "maximize"

    @model_validator(mode="after")
    def _one_of(self) -> BaselineSpec:
        if (self.value is None) == (self.metric is None):
            raise ValueError("give exactly one of 'value' or 'metric'")
        return self


class CostSpec(_Strict):
    """How a run's cost in USD is known: a metric the project reports, or a price model."""

    metric: str | None = None
    per_task: float = Field(0.0, ge=0)
    per_shot: float = Field(0.0, ge=0)
    per_second: float = Field(0.0, ge=0)


class StandardizeSpec(_Strict):
    """Declarations that make one project's metrics comparable with another's.

    Attributes:
        fidelity: fidelity-type metrics, name -> the value that means "perfect" (1 or 100 for
            percent); normalised to 0..1, and values outside it flagged, never clipped. A list of
            names means scale 1.
        probabilities: shot-estimated probabilities (success or error rates); each gets a
            Wilson interval ``<metric>_ci_low`` / ``<metric>_ci_high``.
        shots: the parameter (or metric) holding the shot count.
        confidence: confidence level of the intervals.
        baselines: metric -> baseline; adds ``<metric>_rel_improvement``.
        cost: adds ``cost_per_shot`` and ``cost_per_second`` and fills the result's cost.
    """

    fidelity: dict[str, float] = Field(default_factory=dict)
    probabilities: list[str] = Field(default_factory=list)
    shots: str = "shots"
    confidence: float = Field(0.95, gt=0, lt=1)
    baselines: dict[str, BaselineSpec] = Field(default_factory=dict)
    cost: CostSpec | None = None

    @field_validator("fidelity", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return {name: 1.0 for name in value} if isinstance(value, list) else value

    @field_validator("fidelity")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, scale in value.items():
            if scale <= 0:
                raise ValueError(f"scale of fidelity '{name}' must be > 0 (1, or 100 for percent)")
        return value


class ProjectSpec(_Strict):
    """One project of a sweep. ``path`` is resolved against the sweep file's folder."""

    # populate_by_name: a spec dumped as JSON (``class_``) validates again, as workers receive it
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: Path
    entry: str | None = Field(None, description="module:function, module:Class or a command template")
    kind: Kind = "auto"
    resource: Resource = "local_cpu"
    device: str | None = Field(None, description="local:sv, local:dm, a Braket device ARN, or auto")
    devices: list[str] = Field(
        default_factory=list,
        description="device: auto: the candidates (default: every device the account can reach, "
        "and local:sv / local:dm)",
    )
    require_qpu: bool = Field(False, description="device: auto: choose among QPUs only")
    device_choice: DeviceChoice | None = Field(
        None,
        description="device: auto: what was chosen per circuit shape at submit (set by the orchestrator)",
    )
    failover: list[str] = Field(
        default_factory=list,
        description="devices to use, in order, when 'device' is offline or outside its "
        "window (ARNs, or local:sv / local:dm to allow local work)",
    )
    fidelities: list[Rung] = Field(
        default_factory=list,
        description="a fidelity ladder, cheapest rung first: every point runs on the first, and "
        "the optimizer promotes the promising ones (replaces device)",
    )
    promote: PromoteSpec | None = Field(None, description="fidelities: when a point climbs a rung")
    noise: Calibration | None = Field(
        None,
        description="the QPU calibration a run on a density-matrix simulator simulates (set by "
        "the orchestrator on a ladder rung's run, from the rung's noise: device)",
    )
    fixed: dict[str, Any] = Field(
        default_factory=dict, description="parameters passed unchanged to every run"
    )
    rename: dict[str, str] = Field(
        default_factory=dict,
        description="sweep parameter name -> the entry's argument name, for an entry whose "
        "arguments are named otherwise (e.g. {gamma: angle})",
    )
    config_arg: str | None = Field(
        None,
        pattern=_IDENTIFIER,
        description="the entry's parameter that takes all parameters as one mapping "
        "(e.g. config for run(config)); detected when the only parameter is annotated as a dict",
    )
    metrics: dict[str, str] = Field(default_factory=dict, description="output metric name -> field path")
    timeout: float | None = Field(None, gt=0, description="seconds before a run is stopped")
    class_: ClassSpec | None = Field(None, alias="class", description="options of a class project")
    command: CommandSpec | None = None
    circuit: CircuitSpec | None = None
    python: str | None = Field(
        None, description="the project's own interpreter (absolute or project-relative)"
    )
    requirements: str | Literal[False] | None = Field(
        None,
        description="requirements.txt or pyproject.toml for a cached virtualenv; None finds one in "
        "the project folder, false never builds one",
    )
    isolation: Literal["auto", "inline", "subprocess"] = Field(
        "auto", description="auto: a subprocess when the project has its own environment or a timeout"
    )
    standardize: StandardizeSpec = Field(default_factory=StandardizeSpec)
    check_parameters: dict[str, Any] = Field(
        default_factory=dict, description="parameters of the dry run when checking the bare project folder"
    )
    code: Literal["shipped", "shared"] = Field(
        "shipped",
        description="shipped: the folder is packed at submit and every worker runs that archive; "
        "shared: workers run the folder in place (it must exist at the same path on every worker)",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="gitignore-style patterns left out of the shipped archive, beside .gitignore's",
    )

    @field_validator("rename")
    @classmethod
    def _identifiers(cls, value: dict[str, str]) -> dict[str, str]:
        targets = list(value.values())
        for name in targets:
            if not re.match(_IDENTIFIER, name):
                raise ValueError(
                    f"'{name}' is not an argument name; give an identifier such as {name.strip() or 'x'}"
                )
        if len(set(targets)) != len(targets):
            raise ValueError("two parameters are renamed to the same argument; give each its own")
        return value

    def arguments(self, params: dict[str, Any]) -> dict[str, Any]:
        """What the entry receives for the sweep's ``params``: ``fixed`` merged in, and each name
        renamed as ``rename`` says."""
        given = {k: v for k, v in params.items() if not (k == FIDELITY and self.fidelities)}
        return {**self.fixed, **{self.rename.get(k, k): v for k, v in given.items()}}

    def argument_names(self, parameters: list[str]) -> list[str]:
        """The names the entry receives for the sweep's ``parameters`` (see :meth:`arguments`)."""
        return list(self.arguments(dict.fromkeys(parameters)))

    def receives_seed(self, parameters: list[str]) -> bool:
        """Whether a run receives the seed derived from the sweep's ``seed``: a function or class
        that declares ``seed`` is passed it, a command finds it in ``$ORCHESTRATOR_SEED``; a
        circuit never gets one, and a swept or fixed ``seed`` replaces it. Whether an entry reads
        it is not known without importing it (or, for a command, ever), so every other run counts
        as receiving it: a result is then never reused for another seed."""
        circuit = self.circuit is not None or self.kind == "circuit"
        return not circuit and "seed" not in self.argument_names(parameters)

    @model_validator(mode="after")
    def _consistent(self) -> ProjectSpec:
        given = {"class": self.class_, "command": self.command, "circuit": self.circuit}
        options = [k for k, v in given.items() if v is not None]
        if len(options) > 1:
            raise ValueError(f"give at most one of {options}: they configure different kinds of project")
        if self.kind != "auto" and options and options[0] != self.kind:
            raise ValueError(f"kind '{self.kind}' does not match the '{options[0]}' options; remove one")
        if self.config_arg and (self.command or self.circuit or self.kind in ("command", "circuit")):
            raise ValueError(
                "config_arg applies to Python entries (module:function or module:Class); "
                "command projects read parameters from placeholders, env or params_file"
            )
        if self.config_arg and self.class_ and self.class_.config_arg not in (None, self.config_arg):
            raise ValueError("config_arg and class.config_arg differ; give one of them")
        if self.python and self.requirements:
            raise ValueError(
                "give 'python' (an existing interpreter) or 'requirements' (a built one), not both"
            )
        for device in (self.device, *self.devices):
            if device and not (
                device in ("local:sv", "local:dm", AUTO) or device.startswith("arn:aws:braket")
            ):
                raise ValueError(
                    "device must be local:sv, local:dm, auto or a Braket device ARN (arn:aws:braket:...)"
                )
        if self.device != AUTO and (self.devices or self.require_qpu or self.device_choice):
            raise ValueError("devices and require_qpu choose among candidates: set device: auto")
        if AUTO in self.devices:
            raise ValueError("devices lists candidates (ARNs, local:sv, local:dm), not auto")
        self._check_ladder()
        return self

    def _check_ladder(self) -> None:
        if self.promote is not None and not self.fidelities:
            raise ValueError("promote applies to a fidelity ladder: add fidelities (two rungs or more)")
        if not self.fidelities:
            return
        if len(self.fidelities) < 2:
            raise ValueError("fidelities needs two rungs or more; for one device set device instead")
        if self.device is not None or self.failover:
            given = "device" if self.device is not None else "failover"  # the field the message names
            raise ValueError(f"{given}: fidelities replaces device and failover; remove device and failover")
        if not (self.circuit is not None or self.kind == "circuit"):
            raise ValueError("fidelities applies to circuit projects (the orchestrator picks their device)")
        for number, rung in enumerate(self.fidelities):
            if not (rung.device in ("local:sv", "local:dm") or rung.device.startswith("arn:aws:braket")):
                raise ValueError(
                    f"fidelities[{number}].device must be local:sv, local:dm or a Braket device ARN"
                )
            if rung.noise == "device" and rung.device != "local:dm" and not rung.device.endswith("/dm1"):
                raise ValueError(
                    f"fidelities[{number}]: noise: device needs a density-matrix simulator "
                    "(local:dm or DM1) to simulate the QPU's noise on"
                )
        if self.target is None and any(r.noise == "device" for r in self.fidelities):
            raise ValueError("noise: device simulates the ladder's QPU: put a QPU rung at the top")

    def rung_of(self, params: dict[str, Any]) -> int:
        """The ladder rung of an experiment: its ``fidelity`` parameter, 0 on the first rung."""
        return int(params.get(FIDELITY) or 0) if self.fidelities else 0

    def on_rung(self, params: dict[str, Any]) -> ProjectSpec:
        """This project as one experiment of its ladder runs it: a plain circuit project on the
        rung's device, simulating the rung's calibration (``noise``); itself without a ladder."""
        if not self.fidelities:
            return self
        rung = self.fidelities[min(self.rung_of(params), len(self.fidelities) - 1)]
        return self.model_copy(
            update={"device": rung.device, "fidelities": [], "promote": None, "noise": rung.calibration}
        )

    @property
    def target(self) -> str | None:
        """The device whose noise ``noise: device`` simulates: the ladder's top managed QPU."""
        qpus = [r.device for r in self.fidelities if ":device/qpu/" in r.device]
        return qpus[-1] if qpus else None

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> Any:
        # The device: auto fields are left out at their defaults, so every other project dumps
        # (and hashes into its sweep id) as it did before they existed.
        data = handler(self)
        if isinstance(data, dict):
            for name, default in (
                ("devices", []),
                ("require_qpu", False),
                ("device_choice", None),
                ("fidelities", []),
                ("promote", None),
                ("noise", None),
            ):
                if data.get(name) == default:
                    data.pop(name, None)
        return data

    @property
    def may_pay(self) -> bool:
        """Its experiments may run on a managed (paid) Braket device."""
        if self.device == AUTO:
            return not self.devices or any(is_managed(d) for d in self.devices)
        return is_managed(self.device) or any(is_managed(r.device) for r in self.fidelities)

    def device_for(self, params: dict[str, Any]) -> str | None:
        """The device an experiment with ``params`` runs on: the named one, or what ``device:
        auto`` chose for its circuit's shape (``auto`` itself for a point never checked), or its
        rung's on a fidelity ladder."""
        if self.fidelities:
            return self.fidelities[min(self.rung_of(params), len(self.fidelities) - 1)].device
        if self.device != AUTO or self.device_choice is None:
            return self.device
        shape = self.device_choice.shape_for({**self.fixed, **params})
        return shape.device if shape else AUTO

    def on_device(self, device: str | None) -> ProjectSpec:
        """This project as one experiment runs it: ``device: auto`` replaced by its device."""
        if self.device != AUTO or not device or device == AUTO:
            return self
        return self.model_copy(update={"device": device})
