"""The dashboard's insights on a fidelity ladder: the rung is no parameter, and importance reads
the top rung only (pooling rungs would rank the simulator's bias)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from orchestrator.web.insights import importance, varied_parameters


def _ladder(n: int = 24) -> pa.Table:
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    promoted = np.arange(n) < n // 2
    # rung 0 reads a shifted copy of the top; both depend on a alone
    rung0 = {
        "param.a": a,
        "param.b": b,
        "param.fidelity": [None] * n,
        "fidelity": [0] * n,
        "metric.cut": a + 0.3,
    }
    top = {
        "param.a": a[promoted],
        "param.b": b[promoted],
        "param.fidelity": [1] * int(promoted.sum()),
        "fidelity": [1] * int(promoted.sum()),
        "metric.cut": a[promoted],
    }
    rows = {k: list(rung0[k]) + list(top[k]) for k in rung0}
    size = len(rows["fidelity"])
    rows.update(status=["completed"] * size, project_name=["qaoa"] * size)
    return pa.table(rows)


def test_the_rung_is_not_a_varied_parameter_on_a_ladder() -> None:
    assert sorted(varied_parameters(_ladder())) == ["a", "b"]


def test_a_swept_parameter_named_fidelity_counts_off_a_ladder() -> None:
    table = pa.table({"param.fidelity": [0.9, 0.95], "metric.x": [1.0, 2.0]})
    assert varied_parameters(table) == ["fidelity"]


def test_importance_reads_the_top_rung_and_never_ranks_the_rung() -> None:
    found = importance("ladder-test", _ladder(), "cut", [])
    assert [f["parameter"] for f in found] == ["a", "b"]
    assert found[0]["total"] > 0.9 > found[1]["total"]
