"""Where a circuit project's experiments run: ``device: auto``'s choice per circuit shape, and a
fidelity ladder's rungs (``fidelities:``, ``promote:``). Part of a project's spec
(:mod:`core.project`); the orchestrator fills in what it decides at submit (the choice, the
calibrations), so a restarted coordinator never decides again.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.identity import canonical

Resource = Literal["local_cpu", "braket_sim", "braket_qpu"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_managed(device: str | None) -> bool:
    """A managed Braket device (an ARN), as opposed to ``local:sv`` / ``local:dm`` or none."""
    return bool(device) and str(device).startswith("arn:")


#: ``device: auto``: the cheapest candidate that can run each circuit shape, chosen at submit
AUTO = "auto"


class ShapeChoice(_Strict):
    """The device ``device: auto`` chose for one circuit shape, and why the others lost.

    Attributes:
        shape: the shape in words (qubits, gates, noise, shots), for messages and rows.
        device: the chosen device.
        cost: USD per task on it, estimated at submit.
        reason: why it won, in one sentence.
        candidates: every other candidate -> why it lost (cannot run it now, or costs more).
    """

    shape: str
    device: str
    cost: float
    reason: str
    candidates: dict[str, str] = Field(default_factory=dict)


class DeviceChoice(_Strict):
    """What ``device: auto`` chose, per circuit shape, when the sweep was submitted.

    Stored with the sweep (its configuration in Redis and in ``sweep.json``), so a coordinator
    restarted mid-sweep plans every experiment on the device chosen at submit: the choice is part
    of each experiment's identity, and choosing again could send paid work elsewhere.

    Attributes:
        keys: the swept parameters a circuit's shape depends on (the fewest that tell shapes apart).
        points: JSON list of those parameters' values -> index into ``shapes``.
        shapes: one choice per distinct shape.
    """

    keys: list[str] = Field(default_factory=list)
    points: dict[str, int] = Field(default_factory=dict)
    shapes: list[ShapeChoice] = Field(default_factory=list)

    @staticmethod
    def key_of(keys: list[str], params: dict[str, Any]) -> str:
        """The lookup key of ``params``: their values of ``keys``, canonical JSON (a number
        alike whether it came as 2 or 2.0)."""
        values = [params.get(k) for k in keys]
        return json.dumps(
            [
                canonical(float(v))
                if isinstance(v, int | float) and not isinstance(v, bool)
                else canonical(v)
                for v in values
            ],
            separators=(",", ":"),
        )

    def shape_for(self, params: dict[str, Any]) -> ShapeChoice | None:
        """The choice for the circuit ``params`` build, or None for a point never checked."""
        index = self.points.get(self.key_of(self.keys, params))
        return None if index is None else self.shapes[index]


class Calibration(_Strict):
    """A QPU's published noise averages, read from its device description when the sweep is
    submitted (``noise: device``), so every worker simulates the same snapshot and a new
    calibration makes new experiments rather than silently different ones.

    Attributes:
        device: the device it was read from.
        one_qubit: average single-qubit gate fidelity.
        two_qubit: average two-qubit gate fidelity.
        readout: probability a qubit is read as prepared.
    """

    device: str
    one_qubit: float = Field(gt=0, le=1)
    two_qubit: float = Field(gt=0, le=1)
    readout: float = Field(gt=0, le=1)


class Rung(_Strict):
    """One rung of a fidelity ladder (``fidelities:``), cheapest first.

    Attributes:
        device: where the rung runs: local:sv, local:dm or a Braket device ARN.
        noise: ``device``: simulate the ladder's QPU (its top managed rung) with its published
            calibration; only on ``local:dm`` or DM1.
        shots: the shots a run gets on this rung (default: the point's own).
        calibration: what ``noise: device`` read at submit (set by the orchestrator).
    """

    device: str
    noise: Literal["device"] | None = None
    shots: int | None = Field(None, ge=1)
    calibration: Calibration | None = None

    @property
    def queue(self) -> Resource:
        """The queue a run on this rung waits in: by the kind of device."""
        if not is_managed(self.device):
            return "local_cpu"
        return "braket_qpu" if ":device/qpu/" in self.device else "braket_sim"


class PromoteSpec(_Strict):
    """When a point climbs the ladder (``promote:``).

    Attributes:
        by: ``model``: when the expected improvement at the top rung per dollar of the promotion
            beats the other uses of the budget; ``top_k``: the ``top_k`` best points of each rung.
        max_share: at most this share of the points climbs past the first rung.
        top_k: with ``by: top_k``, the points promoted from each rung.
    """

    by: Literal["model", "top_k"] | None = None
    max_share: float = Field(0.2, ge=0, le=1)
    top_k: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _rule(self) -> PromoteSpec:
        if self.by is None:
            object.__setattr__(self, "by", "top_k" if self.top_k is not None else "model")
        if self.by == "top_k" and self.top_k is None:
            raise ValueError("promote by top_k needs top_k: the points promoted from each rung, e.g. 10")
        if self.by == "model" and self.top_k is not None:
            raise ValueError("top_k applies to by: top_k; remove it or set by: top_k")
        return self


#: the parameter that carries a promoted experiment's rung (absent on the first rung)
FIDELITY = "fidelity"
