"""QAOA for MaxCut on small graphs, as a circuit builder plus an analysis step.

``build`` returns a Braket circuit for depth ``p`` with the same (gamma, beta) in every layer;
whoever runs it chooses the device and the shots. ``analyze`` turns the measured bitstrings into
the approximation ratio (mean cut / maximum cut) with a normal-approximation interval over the
shots, and the probability of sampling an optimal cut.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from braket.circuits import Circuit

GRAPHS: dict[str, list[tuple[int, int]]] = {
    "triangle": [(0, 1), (1, 2), (0, 2)],
    "square": [(0, 1), (1, 2), (2, 3), (3, 0)],
    "bowtie": [(0, 1), (1, 2), (0, 2), (2, 3), (3, 4), (2, 4)],
    "k4": [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)],
    "ring5": [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)],
    # 3-regular and triangle-free: p = 1 reaches 1/2 + 1/(3 sqrt 3) of the edges (Farhi et al. 2014)
    "k33": [(i, j) for i in range(3) for j in range(3, 6)],
}


def edges_of(graph: str) -> list[tuple[int, int]]:
    if graph not in GRAPHS:
        raise ValueError(f"unknown graph {graph!r}; choose one of {sorted(GRAPHS)}")
    return GRAPHS[graph]


def n_nodes(edges: list[tuple[int, int]]) -> int:
    return 1 + max(max(e) for e in edges)


def cut_value(bits: str, edges: list[tuple[int, int]]) -> int:
    return sum(bits[i] != bits[j] for i, j in edges)


def max_cut(edges: list[tuple[int, int]]) -> int:
    n = n_nodes(edges)
    return max(cut_value("".join(b), edges) for b in itertools.product("01", repeat=n))


def build(params: Mapping[str, Any]) -> Circuit:
    """QAOA circuit: |+>^n, then p x (cost layer exp(-i gamma C), mixer exp(-i beta B))."""
    edges = edges_of(str(params["graph"]))
    gamma, beta, p = float(params["gamma"]), float(params["beta"]), int(params["p"])
    circuit = Circuit()
    for q in range(n_nodes(edges)):
        circuit.h(q)
    for _ in range(p):
        for i, j in edges:
            # C = sum (1 - Z_i Z_j) / 2, so exp(-i gamma C) = prod exp(+i gamma/2 Z_i Z_j) = ZZ(-gamma)
            circuit.zz(i, j, -gamma)
        for q in range(n_nodes(edges)):
            circuit.rx(q, 2 * beta)
    return circuit


def analyze(result: Any, params: Mapping[str, Any]) -> dict[str, float]:
    edges = edges_of(str(params["graph"]))
    best = max_cut(edges)
    counts = result.measurement_counts
    shots = sum(counts.values())
    ratios = [(cut_value(bits, edges) / best, n) for bits, n in counts.items()]
    mean = sum(r * n for r, n in ratios) / shots
    var = sum(n * (r - mean) ** 2 for r, n in ratios) / max(shots - 1, 1)
    half = 1.959963984540054 * math.sqrt(var / shots)
    optimal = sum(n for bits, n in counts.items() if cut_value(bits, edges) == best)
    return {
        "approx_ratio": mean,
        "approx_ratio_ci_low": mean - half,
        "approx_ratio_ci_high": mean + half,
        "p_optimal": optimal / shots,
        "mean_cut": mean * best,
        "max_cut": float(best),
    }
