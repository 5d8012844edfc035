"""Circuit sources and experiments shared by the executor tests."""

from __future__ import annotations

from typing import Any

from braket.circuits import Circuit, FreeParameter

from core.models import Experiment


class BellSource:
    """A Bell pair, optionally with a rotation bound through an input; metrics: parity and p_bell."""

    def build(self, parameters: dict[str, Any]) -> Any:
        if "theta" in parameters:
            theta = FreeParameter("theta")
            return Circuit().ry(0, theta).cnot(0, 1), {"theta": float(parameters["theta"])}
        return Circuit().h(0).cnot(0, 1)

    def analyze(self, result: Any, parameters: dict[str, Any]) -> dict[str, float]:
        probs = result.measurement_probabilities
        return {"p_bell": probs.get("00", 0.0) + probs.get("11", 0.0), "p_00": probs.get("00", 0.0)}


def experiment(name: str, device: str, *, sweep: str = "sweep", **parameters: Any) -> Experiment:
    resource = "braket_qpu" if "/qpu/" in device else "braket_sim"
    return Experiment(
        sweep_id=sweep,
        experiment_id=name,
        index=0,
        project="bell",
        parameters=parameters,
        device=device,
        resource=resource,
    )
