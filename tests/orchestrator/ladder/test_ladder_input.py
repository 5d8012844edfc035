"""A fidelity ladder before it runs: ``estimate``, ``run``'s confirmation and the REST dry run
price it at its bound per rung (every point on the first rung, ``max_share`` of them on each
higher one); bad ladders exit 2 naming the file, the field and the fix, and write nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from core.settings import load_settings
from orchestrator.braket.prices import load_price_table
from orchestrator.validation import validate
from tests.conftest import cli
from tests.support.auto_device import GHZ
from tests.support.braket_env import BraketTestEnv
from tests.support.fake_devices import IONQ, SV1
from tests.web.conftest import dry_run

LADDER = [{"device": "local:dm"}, {"device": SV1}, {"device": IONQ, "shots": 50}]


def ghz_ladder(rungs: list[dict[str, Any]] = LADDER, parameters: dict | None = None, **project: Any) -> dict:
    """The GHZ fixture over 10 points (5 widths, 100 or 200 shots) on the ladder ``rungs``."""
    entry = {"name": "ghz", "path": str(GHZ), "circuit": {"build": "ghz:build", "analyze": "ghz:analyze"}}
    return {
        "name": "ladder",
        "projects": [{**entry, "fidelities": rungs, **project}],
        "parameters": {"n": [2, 3, 4, 5, 6], "shots": [100, 200], **(parameters or {})},
        "adaptive_sampling": False,
    }


def _write(workdir: Path, sweep: dict[str, Any]) -> Path:
    path = workdir / "ladder.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def _words(text: str) -> str:
    return " ".join("".join(" " if "\u2500" <= c <= "\u257f" else c for c in text).split())


SIM = 3 * 0.075 / 60  # SV1's billing minimum
QPU = 0.30 + 0.08 * 50  # Forte at the rung's 50 shots


def test_the_estimate_is_every_point_on_rung_zero_and_max_share_above(paid_env: BraketTestEnv) -> None:
    estimate = validate(ghz_ladder(), load_settings()).estimate
    rows = [(r.rung, r.device, r.shots, r.tasks, round(r.cost, 6)) for r in estimate.rungs]
    assert rows == [
        (0, "local:dm", None, 10, 0.0),
        (1, SV1, None, 2, round(2 * SIM, 6)),
        (2, IONQ, 50, 2, 2 * QPU),
    ]
    assert estimate.total == pytest.approx(2 * SIM + 2 * QPU)
    assert estimate.lines[IONQ].shots == 100 and estimate.lines[SV1].tasks == 2
    half = validate(ghz_ladder(promote={"max_share": 0.5}), load_settings()).estimate
    assert [r.tasks for r in half.rungs] == [10, 5, 5]
    assert half.total == pytest.approx(5 * SIM + 5 * QPU)
    # a rung at the point's own shots is bounded by the points with the most shots
    own = validate(ghz_ladder([{"device": "local:sv"}, {"device": IONQ}]), load_settings()).estimate
    assert own.rungs[1].cost == pytest.approx(2 * load_price_table().task_cost(IONQ, 200))


def test_the_cli_estimate_and_runs_confirmation_show_each_rung(
    paid_env: BraketTestEnv, workdir: Path, redis_url: str
) -> None:
    path = _write(workdir, ghz_ladder())
    proc = cli("estimate", str(path), workdir=workdir, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = _words(proc.stdout)
    assert "fidelity ladder" in out
    assert "ghz 0 local:dm the point's 10 0.0000" in out
    assert f"ghz 1 sv1 the point's 2 {2 * SIM:.4f}" in out
    assert f"ghz 2 Forte-1 50 2 {2 * QPU:.4f}" in out
    assert f"total: ${2 * SIM + 2 * QPU:.4f}" in out and "priced at its most" in out
    # above confirm_above: without a terminal, run refuses, and says what the total is made of
    proc = cli(
        "run", str(path), "--broker", redis_url, workdir=workdir, timeout=120, ORCHESTRATOR_CONFIRM_ABOVE="5"
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert f"ladder ghz, rung 2 ({IONQ}): at most 2 tasks, ${2 * QPU:.2f}" in err
    assert "pass --yes" in err and redis.Redis.from_url(redis_url).dbsize() == 0


def test_the_rest_dry_run_returns_the_rungs(paid_env: BraketTestEnv, workdir: Path, redis_url: str) -> None:
    res = dry_run(workdir, redis_url, yaml.safe_dump(ghz_ladder()))
    assert res.status_code == 200, res.text
    estimate = res.json()["estimate"]
    assert [(r["rung"], r["device"], r["tasks"]) for r in estimate["rungs"]] == [
        (0, "local:dm", 10),
        (1, SV1, 2),
        (2, IONQ, 2),
    ]
    assert estimate["total"] == pytest.approx(2 * SIM + 2 * QPU)
    assert redis.Redis.from_url(redis_url).dbsize() == 0


BAD = {
    "rungs_not_rising": (
        ghz_ladder([{"device": "local:sv"}, {"device": IONQ, "shots": 50}, {"device": SV1}]),
        ["projects[0].fidelities[2].device", "does not cost more", "cheapest first"],
    ),
    "equal_costs": (
        ghz_ladder([{"device": "local:sv"}, {"device": "local:dm"}, {"device": IONQ}]),
        ["projects[0].fidelities[1].device", "$0.0000", "cheapest first"],
    ),
    "swept_fidelity": (
        ghz_ladder(parameters={"fidelity": [0, 1]}),
        ["parameters.fidelity", "rung of project 'ghz'", "rename it"],
    ),
    "fixed_fidelity": (
        ghz_ladder(fixed={"fidelity": 1}),
        ["projects[0].fixed.fidelity", "rung of project 'ghz'", "rename it"],
    ),
    "max_share_above_one": (
        ghz_ladder(promote={"max_share": 1.5}),
        ["projects[0].promote.max_share", "less than or equal to 1", "give a number no more than 1"],
    ),
    "shots_budget_with_rung_shots": (
        {
            **ghz_ladder(),
            "adaptive_sampling": True,
            "objectives": [{"metric": "p_0", "goal": "maximize"}],
            "optimizer": {"early_stopping": {"enabled": True, "low_fidelity_share": 0.25}},
        },
        [
            "optimizer.early_stopping.low_fidelity_share",
            "rung 2 of project 'ghz'",
            "remove low_fidelity_share",
        ],
    ),
    "ladder_with_max_experiments": (
        {**ghz_ladder(), "max_experiments": 6},
        ["max_experiments", "project 'ghz' climbs a fidelity ladder", "size the space instead"],
    ),
    "ladder_with_device_auto": (
        ghz_ladder(device="auto"),
        ["projects[0].device", "fidelities replaces device", "remove device and failover"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_ladder_exits_2_names_the_field_and_writes_nothing(
    case: str, paid_env: BraketTestEnv, workdir: Path, redis_url: str
) -> None:
    sweep, words = BAD[case]
    proc = cli("run", str(_write(workdir, sweep)), "--broker", redis_url, "--yes", workdir=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert "ladder.yaml" in err and all(w in err for w in words), err
    assert redis.Redis.from_url(redis_url).dbsize() == 0
    assert not (workdir / "results").exists()
    assert paid_env.admin.stats()["created_total"] == 0
