"""Physics checks: the example projects against answers known in closed form (``orchestrator physics-check``).

Each check runs an example project through its adapter, exactly as a worker would (the VQE in its
own virtualenv), estimates a value with a confidence interval, and compares it with a value
derived independently of the project's code:

* CHSH: S = 2 sqrt(2) for the noiseless Bell pair (Tsirelson's bound) and never above it with
  noise (``examples/projects/bell``, ``bell:chsh``);
* GHZ fidelity under depolarizing noise against the exact curve, from propagating every Pauli
  error of the channels through the Clifford circuit (``examples/projects/ghz_noise``);
* p = 1 QAOA MaxCut on the triangle-free 3-regular K(3,3) at the optimal angles against
  1/2 + 1/(3 sqrt 3) = 0.69245 (Farhi, Goldstone, Gutmann 2014), ``examples/projects/qaoa_maxcut``;
* the VQE's H2 STO-3G ground-state energy at 0.75 A against the exact (full CI) eigenvalue of the
  tabulated Hamiltonian, ``examples/projects/vqe_h2``.

Intervals are at ``CONFIDENCE`` (99.9 %), so a correct suite fails by chance about once in a
thousand runs per check.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, stats

from core.config import validate_sweep
from core.errors import OrchestratorError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "projects"
CONFIDENCE = 0.999
Z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
TSIRELSON = 2 * math.sqrt(2)
FARHI_P1 = 0.5 + 1 / (3 * math.sqrt(3))


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``passed`` when the reference is where the interval says it may be."""

    name: str
    measured: float
    ci_low: float
    ci_high: float
    reference: float
    relation: str  # "within": reference inside the CI; "at most": the CI reaches at or below it
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(
    name: str, measured: float, stderr: float, reference: float, detail: str, at_most: bool = False
) -> Check:
    low, high = measured - Z * stderr, measured + Z * stderr
    passed = low <= reference if at_most else low <= reference <= high
    return Check(name, measured, low, high, reference, "at most" if at_most else "within", passed, detail)


def _project(folder: str, **spec: Any) -> Callable[[dict[str, Any]], dict[str, float]]:
    """Run one example project through its adapter: parameters in, metrics out."""
    from adapters import adapt_project

    config = validate_sweep(
        {
            "name": "physics",
            "projects": [{"name": folder, "path": str(EXAMPLES / folder), **spec}],
            "parameters": {"unused": [0]},
        },
        source="orchestrator physics-check",
    )
    project = config.projects[0]
    adapter = adapt_project(project.path, project)

    def run(params: dict[str, Any]) -> dict[str, float]:
        result = adapter.execute_with_parameters(params)
        if result.status.value != "completed":
            raise OrchestratorError(f"example {folder} failed: {result.error_class}: {result.error_message}")
        return result.metrics

    return run


# -- the checks ---------------------------------------------------------------------------------------


def chsh_checks(shots: int = 20_000) -> Iterator[Check]:
    run = _project("bell", entry="bell:chsh")
    m = run({"noise": 0.0, "shots": shots})
    yield _check(
        "CHSH noiseless: S = 2 sqrt(2) (Tsirelson)",
        m["chsh"],
        m["chsh_stderr"],
        TSIRELSON,
        f"{4 * shots} shots",
    )
    for noise in (0.02, 0.1):
        m = run({"noise": noise, "shots": shots})
        yield _check(
            f"CHSH with depolarizing noise {noise}: S <= 2 sqrt(2)",
            m["chsh"],
            m["chsh_stderr"],
            TSIRELSON,
            f"{4 * shots} shots",
            at_most=True,
        )


def ghz_fidelity_exact(n_qubits: int, noise: float) -> float:
    """<GHZ|rho|GHZ> for ``ghz:build``: H then a CNOT chain, a depolarizing channel of strength
    ``noise`` on every qubit a gate touches, after the gate.

    Each channel applies X, Y or Z with probability noise/3. Every Pauli error is pushed through
    the rest of the (Clifford) circuit; the state survives exactly when the product of the
    errors is a stabilizer of the GHZ state: X on all qubits or on none, and an even number of
    Z's. Exact, and independent of any simulator.
    """
    gates: list[tuple[str, tuple[int, ...]]] = [("h", (0,))]
    gates += [("cnot", (q, q + 1)) for q in range(n_qubits - 1)]
    locations = []  # (gate index, qubit): one channel each
    for k, (_, qubits) in enumerate(gates):
        locations += [(k, q) for q in qubits]
    paulis = {"I": (0, 0), "X": (1, 0), "Y": (1, 1), "Z": (0, 1)}
    weight = {"I": 1 - noise, "X": noise / 3, "Y": noise / 3, "Z": noise / 3}
    fidelity = 0.0
    for choice in itertools.product("IXYZ", repeat=len(locations)):
        x, z = [0] * n_qubits, [0] * n_qubits
        probability = 1.0
        for (k, q), p in zip(locations, choice, strict=True):
            probability *= weight[p]
            ex, ez = [0] * n_qubits, [0] * n_qubits
            ex[q], ez[q] = paulis[p]
            # the later gates are CNOTs: X spreads to the target, Z to the control
            for _, (c, t) in gates[k + 1 :]:
                ex[t] ^= ex[c]
                ez[c] ^= ez[t]
            x = [a ^ b for a, b in zip(x, ex, strict=True)]
            z = [a ^ b for a, b in zip(z, ez, strict=True)]
        if len(set(x)) == 1 and sum(z) % 2 == 0:
            fidelity += probability
    return fidelity


def ghz_checks(shots: int = 20_000, n_qubits: int = 3) -> Iterator[Check]:
    run = _project("ghz_noise")
    for noise in (0.0, 0.02, 0.05, 0.1):
        m = run({"n_qubits": n_qubits, "noise": noise, "shots": shots})
        value = m["fidelity"]
        stderr = math.sqrt(max(value * (1 - value), 1.0 / shots) / shots)
        yield _check(
            f"GHZ-{n_qubits} fidelity at depolarizing noise {noise} vs the exact curve",
            value,
            stderr,
            ghz_fidelity_exact(n_qubits, noise),
            f"{shots} shots, density-matrix simulator",
        )


def qaoa_check(shots: int = 20_000) -> Check:
    run = _project("qaoa_maxcut")
    gamma, beta = math.atan(1 / math.sqrt(2)), math.pi / 8  # the p = 1 optimum for 3-regular graphs
    m = run({"graph": "k33", "p": 1, "gamma": gamma, "beta": beta, "shots": shots})
    stderr = (m["approx_ratio_ci_high"] - m["approx_ratio_ci_low"]) / (2 * 1.959963984540054)
    # K(3,3) is bipartite: its maximum cut is every edge, so the ratio is the cut fraction
    return _check(
        "QAOA p=1 MaxCut on K(3,3) (3-regular, triangle-free) vs 1/2 + 1/(3 sqrt 3)",
        m["approx_ratio"],
        stderr,
        FARHI_P1,
        f"gamma = atan(1/sqrt 2), beta = pi/8, {shots} shots",
    )


def h2_check(bond_length: float = 0.75, shots: int = 20_000, repeats: int = 8) -> Check:
    run = _project("vqe_h2")
    # the VQE: the ansatz angle minimizing the (shot-free) energy, then measured with shots
    fit = optimize.minimize_scalar(
        lambda theta: run({"bond_length": bond_length, "theta": theta, "shots": 0})["energy"],
        bounds=(-math.pi, math.pi),
        method="bounded",
        options={"xatol": 1e-4},
    )
    energies = [
        run({"bond_length": bond_length, "theta": fit.x, "shots": shots, "seed": seed})["energy"]
        for seed in range(repeats)
    ]
    mean, stderr = float(np.mean(energies)), float(np.std(energies, ddof=1) / math.sqrt(repeats))
    return _check(
        f"VQE H2 STO-3G ground state at {bond_length} A vs exact (full CI)",
        mean,
        stderr,
        _h2_exact(bond_length),
        f"theta* = {fit.x:.4f}; {repeats} x {shots} shots",
    )


def _h2_exact(bond_length: float) -> float:
    """The lowest eigenvalue of the tabulated 2x2 configuration-interaction matrix (numpy)."""
    with (EXAMPLES / "vqe_h2" / "h2_sto3g.csv").open() as fh:
        row = next(r for r in csv.DictReader(fh) if abs(float(r["bond_length"]) - bond_length) < 1e-9)
    c_i, c_z, c_x = (float(row[k]) for k in ("c_i", "c_z", "c_x"))
    return float(np.linalg.eigvalsh(np.array([[c_i + c_z, c_x], [c_x, c_i - c_z]]))[0])


def run_suite() -> Iterator[Check]:
    """Every check, in order; each yielded as soon as it is done."""
    yield from chsh_checks()
    yield from ghz_checks()
    yield qaoa_check()
    yield h2_check()
