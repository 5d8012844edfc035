"""p = 1 QAOA for MaxCut on small 3-regular graphs: a circuit builder and its analysis.

``build`` returns the Braket circuit for angles ``gamma`` (cost layer) and ``beta`` (mixer) on
``graph``; ``analyze`` turns the measured bitstrings into the approximation ratio (mean cut over
the maximum cut) with a normal-approximation interval over the shots. ``landscape.py`` beside it
computes the same ratio exactly (no shot noise) under a QPU's published noise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from functools import cache
from typing import Any

from braket.circuits import Circuit

GRAPHS: dict[str, list[tuple[int, int]]] = {
    # the triangular prism: two triangles joined by a matching
    "prism6": [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3), (0, 3), (1, 4), (2, 5)],
    # the Wagner graph (Moebius ladder): an 8-cycle and its four diagonals; no triangles
    "wagner8": [(i, (i + 1) % 8) for i in range(8)] + [(i, i + 4) for i in range(4)],
}


def edges_of(graph: str) -> list[tuple[int, int]]:
    if graph not in GRAPHS:
        raise ValueError(f"unknown graph {graph!r}; choose one of {sorted(GRAPHS)}")
    return GRAPHS[graph]


def n_nodes(edges: list[tuple[int, int]]) -> int:
    return 1 + max(max(e) for e in edges)


def cut_value(bits: str, edges: list[tuple[int, int]]) -> int:
    return sum(bits[i] != bits[j] for i, j in edges)


@cache
def max_cut(graph: str) -> int:
    edges = edges_of(graph)
    return max(cut_value("".join(b), edges) for b in itertools.product("01", repeat=n_nodes(edges)))


def build(params: Mapping[str, Any]) -> Circuit:
    """|+>^n, the cost layer exp(-i gamma C) as one ZZ(-gamma) per edge, the mixer RX(2 beta)."""
    edges = edges_of(str(params["graph"]))
    gamma, beta = float(params["gamma"]), float(params["beta"])
    circuit = Circuit()
    for q in range(n_nodes(edges)):
        circuit.h(q)
    for i, j in edges:
        circuit.zz(i, j, -gamma)
    for q in range(n_nodes(edges)):
        circuit.rx(q, 2 * beta)
    return circuit


def analyze(result: Any, params: Mapping[str, Any]) -> dict[str, float]:
    graph = str(params["graph"])
    edges, best = edges_of(graph), max_cut(graph)
    counts = result.measurement_counts
    shots = sum(counts.values())
    ratios = [(cut_value(bits, edges) / best, n) for bits, n in counts.items()]
    mean = sum(r * n for r, n in ratios) / shots
    var = sum(n * (r - mean) ** 2 for r, n in ratios) / max(shots - 1, 1)
    half = 1.959963984540054 * math.sqrt(var / shots)
    return {
        "approx_ratio": mean,
        "approx_ratio_ci_low": mean - half,
        "approx_ratio_ci_high": mean + half,
        "max_cut": float(best),
    }
