"""The example projects: unchanged research code, correct physics, every sweep point runs."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from adapters import adapt_project
from core.config import load_sweep
from core.models import ExperimentStatus

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MINE = ["qaoa_maxcut", "ghz_noise", "vqe_h2", "repetition_code"]


def sweep_project(sweep: str, project: str | None = None):
    config = load_sweep(EXAMPLES / "sweeps" / f"{sweep}.yaml")
    spec = next(p for p in config.projects if project in (None, p.name))
    return adapt_project(spec.path, spec)


@pytest.mark.parametrize("name", MINE)
def test_examples_do_not_import_the_orchestrator(name: str) -> None:
    for file in (EXAMPLES / "projects" / name).glob("*.py"):
        tree = ast.parse(file.read_text())
        modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {
            n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
        }
        assert not modules & {"orchestrator", "adapters", "workers", "analysis"}, file


@pytest.mark.parametrize("sweep", ["qaoa_maxcut", "ghz_noise", "vqe_h2", "repetition_code", "cross_project"])
def test_every_point_of_every_example_sweep_completes(sweep: str) -> None:
    config = load_sweep(EXAMPLES / "sweeps" / f"{sweep}.yaml")
    space = config.space()
    points = [space.point(int(i)) for chunk in space.iter_valid() for i in chunk]
    for spec in config.projects:
        adapter = adapt_project(spec.path, spec)
        for point in points:
            result = adapter.execute_with_parameters(point)
            assert result.status == ExperimentStatus.COMPLETED, (spec.name, point, result.error_message)
            assert not result.extra.get("flags"), result.extra["flags"]
            for objective in config.objectives:
                assert objective.metric in result.metrics


def test_qaoa_with_zero_angles_samples_uniformly() -> None:
    adapter = sweep_project("qaoa_maxcut")
    result = adapter.execute_with_parameters(
        {"gamma": 0.0, "beta": 0.0, "p": 1, "graph": "triangle", "shots": 4000}
    )
    # uniform bitstrings cut 1.5 of the triangle's 3 edges on average; the max cut is 2
    m = result.metrics
    assert m["approx_ratio"] == pytest.approx(0.75, abs=0.035)  # 5 standard errors at 4000 shots
    assert m["p_optimal"] == pytest.approx(0.75, abs=0.035)
    assert m["approx_ratio_ci_low"] < m["approx_ratio"] < m["approx_ratio_ci_high"]
    assert m["approx_ratio_ci_high"] - m["approx_ratio_ci_low"] == pytest.approx(
        2 * 1.96 * (0.1875 / 4000) ** 0.5, rel=0.1
    )
    assert m["p_optimal_ci_low"] < m["p_optimal"] < m["p_optimal_ci_high"]


def test_qaoa_good_angles_beat_random_guessing() -> None:
    adapter = sweep_project("qaoa_maxcut")
    result = adapter.execute_with_parameters(
        {"gamma": 0.6, "beta": 0.3, "p": 1, "graph": "square", "shots": 2000}
    )
    assert result.metrics["approx_ratio"] > 0.6  # random guessing gives 0.5 on the square


def test_ghz_fidelity_falls_with_noise() -> None:
    adapter = sweep_project("ghz_noise")
    fids = [
        adapter.execute_with_parameters({"n_qubits": 3, "noise": p, "shots": 2000}).metrics["fidelity"]
        for p in (0.0, 0.05, 0.2)
    ]
    assert fids[0] == 1.0 and fids[0] > fids[1] > fids[2]


def test_vqe_matches_the_textbook_h2_energies() -> None:
    adapter = sweep_project("vqe_h2")
    result = adapter.execute_with_parameters({"theta": 0.0, "bond_length": 0.75, "shots": 0})
    assert result.status == ExperimentStatus.COMPLETED, result.error_message
    # STO-3G H2 near equilibrium: Hartree-Fock -1.116, full CI -1.137 hartree (Szabo & Ostlund)
    assert result.metrics["energy"] == pytest.approx(result.metrics["hartree_fock_energy"])
    assert result.metrics["hartree_fock_energy"] == pytest.approx(-1.116, abs=2e-3)
    assert result.metrics["exact_energy"] == pytest.approx(-1.137, abs=2e-3)
    best = min(
        adapter.execute_with_parameters({"theta": t / 100, "bond_length": 0.75, "shots": 0}).metrics["error"]
        for t in range(-40, 1, 2)
    )
    assert 0 <= best < 1e-3  # variational: never below the exact energy, and close at the optimum


def test_vqe_reports_relative_improvement_over_hartree_fock() -> None:
    config = load_sweep(EXAMPLES / "sweeps" / "vqe_h2.yaml")
    assert config.projects[0].standardize.baselines  # merged from the project's orchestrator-project.yaml
    result = sweep_project("vqe_h2").execute_with_parameters(
        {"theta": -0.22, "bond_length": 0.75, "shots": 0}
    )
    assert result.metrics["energy_rel_improvement"] > 0


def test_repetition_code_matches_its_exact_logical_error() -> None:
    result = sweep_project("repetition_code").execute_with_parameters(
        {"noise": 0.1, "distance": 3, "shots": 2000}
    )
    exact = result.metrics["logical_error_exact"]
    assert exact == pytest.approx(3 * 0.01 * 0.9 + 0.001)
    assert math.isclose(result.metrics["logical_error_rate"], exact, abs_tol=0.02)  # about 5 standard errors
    assert result.metrics["logical_error_rate_ci_low"] < result.metrics["logical_error_rate_ci_high"]


def test_cross_project_sweep_reports_a_common_fidelity() -> None:
    config = load_sweep(EXAMPLES / "sweeps" / "cross_project.yaml")
    for spec in config.projects:
        result = adapt_project(spec.path, spec).execute_with_parameters({"noise": 0.1, "shots": 1000})
        assert result.status == ExperimentStatus.COMPLETED, result.error_message
        assert {"fidelity", "fidelity_ci_low", "fidelity_ci_high"} <= set(result.metrics)
        assert 0.0 <= result.metrics["fidelity"] <= 1.0
