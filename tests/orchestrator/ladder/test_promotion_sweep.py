"""A ladder sweep end to end: real workers run rung 0 (local:dm) and the promotions the refit
decides on the fake IonQ (real SDK, fake Braket service, moto S3): at most max_share of the
points climb, each once, on the QPU rung, and the money adds up."""

from __future__ import annotations

import math
from pathlib import Path

from orchestrator import Orchestrator
from tests.orchestrator.ladder.test_plan import QAOA
from tests.support.braket_env import BraketTestEnv
from tests.support.fake_devices import IONQ
from tests.workers.test_braket_faults import assert_money_adds_up

GAMMAS = [round(0.1 * i, 2) for i in range(1, 11)]


def test_a_ladder_sweep_promotes_at_most_max_share_of_its_points_on_the_qpu_rung(
    paid_env: BraketTestEnv, workdir: Path, redis_url: str, start_worker
) -> None:
    sweep = {
        "name": "ladder-e2e",
        "projects": [
            {
                "name": "qaoa",
                "path": str(QAOA),
                "fidelities": [{"device": "local:dm"}, {"device": IONQ, "shots": 50}],
                "promote": {"max_share": 0.2},
            }
        ],
        "parameters": {"gamma": GAMMAS, "beta": [0.3], "p": [1], "graph": ["triangle"], "shots": [100]},
        "objectives": [{"metric": "approx_ratio", "goal": "maximize"}],
        "budget_limit": 20.0,
    }
    start_worker("local", concurrency=2, queues="local_cpu")
    start_worker("qpu", concurrency=1, queues="braket_qpu")
    with Orchestrator(redis_url, optimizer_interval=0.3) as orch:
        sid = orch.submit(sweep).execution_id
        final = orch.wait(sid, timeout=240)
        frame = orch.results(sid)
        events = [e["message"] for e in orch.status(sid).events]
    assert final.state == "completed", (final, events)
    low, high = frame[frame["fidelity"] == 0], frame[frame["fidelity"] == 1]
    assert sorted(low["param.gamma"]) == GAMMAS
    assert 1 <= len(high) <= math.floor(0.2 * len(GAMMAS)), high[["param.gamma"]]
    assert high["param.gamma"].is_unique and set(high["device"]) == {IONQ} and high["added"].all()
    assert any(m.startswith("ladder qaoa: promoted") for m in events), events
    assert_money_adds_up(frame, paid_env.admin.stats(), redis_url, sid)
