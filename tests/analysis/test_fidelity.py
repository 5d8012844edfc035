"""The fidelity ladder's analysis: each rung against the top on shared points, read from rows
written through core's ResultStore with a known bias per rung (tests/analysis/ladder_data.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from analysis import JSON_SCHEMA, analyze_sweep, best_points, load_sweep_data, render, summarize
from analysis.fidelity import MIN_SHARED, paired_gap
from core.errors import InputError
from core.results import ResultStore
from tests.analysis.ladder_data import DM1, LADDER, QPU, Rung, write_ladder_sweep


def _pairs(result, metric: str = "cut") -> dict[int, dict]:
    return {p["rung"]: p for p in result.fidelity["pairs"] if p["metric"] == metric}


def test_the_interval_of_each_rung_covers_its_known_bias(tmp_path: Path) -> None:
    write_ladder_sweep(tmp_path, "ladder-1", repeats=3)
    result = analyze_sweep(tmp_path, "ladder-1")
    pairs = _pairs(result)
    assert set(pairs) == {0, 1}  # each rung below the top, against the top
    for rung, pair in pairs.items():
        known = LADDER[rung].bias - LADDER[-1].bias
        assert pair["n"] == LADDER[-1].points  # points, not runs: the 3 repeats are averaged
        assert pair["ci_low"] < known < pair["ci_high"], (rung, pair)
        assert pair["ci_low"] > 0  # 0.04 and 0.01 above the QPU with noise 0.01: told apart from 0
        assert pair["top_device"] == QPU and pair["device"] == LADDER[rung].device
        assert pair["rho"] > 0.8  # a constant offset keeps the order
    energy = _pairs(result, "energy")[0]  # the other metrics too: energy = -2 cut
    assert energy["ci_low"] < -2 * LADDER[0].bias < energy["ci_high"]


def test_the_t_and_fisher_z_intervals_cover_at_their_level() -> None:
    rng = np.random.default_rng(8)
    r, n, trials = 0.8, 20, 2000  # 95 % coverage: 1900 +- 20 (two standard deviations)
    spearman = 6 / math.pi * math.asin(r / 2)  # the population rank correlation of a normal pair
    bias_hits = rho_hits = 0
    for _ in range(trials):
        x = rng.multivariate_normal([0, 0], [[1, r], [r, 1]], size=n)
        gap = paired_gap(x[:, 0] + 0.3, x[:, 1])
        bias_hits += gap["ci_low"] <= 0.3 <= gap["ci_high"]
        rho_hits += gap["rho_ci_low"] <= spearman <= gap["rho_ci_high"]
    assert 0.93 <= bias_hits / trials <= 0.97
    assert 0.93 <= rho_hits / trials <= 0.97


def test_too_few_shared_points_are_said_so_without_numbers(tmp_path: Path) -> None:
    ladder = (LADDER[0], Rung(QPU, 0.0, MIN_SHARED - 1, 3.0))
    write_ladder_sweep(tmp_path, "few-1", ladder=ladder)
    result = analyze_sweep(tmp_path, "few-1")
    pair = _pairs(result)[0]
    assert pair["n"] == 2 and not pair["enough"]
    assert pair["bias"] is None and pair["ci_low"] is None and pair["rho"] is None
    sentence = "local:dm and the QPU Forte-1 share 2 points of cut: too few (fewer than 3) for a bias"
    page = render(result, "html")
    assert sentence in render(result, "md") and sentence in page
    assert "too few shared points (&lt; 3)" in page  # in the table's bias cell


def test_the_section_appears_only_for_a_ladder_sweep(tmp_path: Path) -> None:
    write_ladder_sweep(tmp_path, "ladder-1")
    write_ladder_sweep(tmp_path, "plain-1", on_ladder=False)
    ladder, plain = analyze_sweep(tmp_path, "ladder-1"), analyze_sweep(tmp_path, "plain-1")
    assert plain.fidelity == {} and ladder.fidelity["pairs"]
    for result in (ladder, plain):
        document = json.loads(render(result, "json"))
        jsonschema.validate(document, JSON_SCHEMA)
        assert "fidelity" in document
    page, text = render(ladder, "html"), render(ladder, "md")
    assert "<h2>Fidelity ladder</h2>" in page and "## Fidelity ladder" in text
    assert "Does each rung read as the top one?" in page and page.count("<svg") >= 2
    opening = page[: page.index("<h2>Fidelity ladder</h2>")]
    assert "local:dm reads cut 0.0" in opening and "higher than the QPU Forte-1 (95% CI" in opening
    assert "on 8 shared points; it ranks points" in opening
    for other in (render(plain, "html"), render(plain, "md")):
        assert "Fidelity ladder" not in other and "shared points" not in other


def test_the_rung_is_neither_a_parameter_nor_a_metric_elsewhere(tmp_path: Path) -> None:
    write_ladder_sweep(tmp_path, "ladder-1")
    data = load_sweep_data(tmp_path, "ladder-1")
    assert "param.fidelity" in data.frame  # promoted experiments carry it in their parameters
    result = analyze_sweep(tmp_path, "ladder-1")
    sweep = result.sweep
    assert sweep["parameters"] == ["beta", "gamma"] and sweep["varied"] == ["beta", "gamma"]
    # the project's own metric named `fidelity` stays a metric, not an input echoed back
    assert sweep["metrics"] == ["cut", "energy", "fidelity"]
    assert {i["parameter"] for i in result.sensitivity["indices"]} <= {"beta", "gamma"}
    # the other sections read the top rung only: one group per QPU point, the QPU's values
    cut = [g for g in result.groups if g["metric"] == "cut"]
    assert len(cut) == LADDER[-1].points and all(set(g["parameters"]) == {"beta", "gamma"} for g in cut)
    qpu = data.frame[data.frame["device"] == QPU]
    best = result.best["objectives"][0]
    assert best["n"] == 1 and best["mean"] == pytest.approx(qpu["metric.cut"].max())
    assert "param.fidelity" not in result.groups_frame()
    # `orchestrator status` prints best_points of the raw rows: the QPU's best, no rung column
    printed = best_points(data.frame, "cut", "maximize", n=3)
    assert printed["cut_mean"].iloc[0] == pytest.approx(qpu["metric.cut"].max())
    assert "param.fidelity" not in printed and len(summarize(data.frame, ["cut"])) == LADDER[-1].points


def test_the_tops_best_is_ranked_on_each_rung(tmp_path: Path) -> None:
    # dm1 reads the truth; local:dm tilts towards large gamma, so it ranks the peak lower
    tilted = (Rung("local:dm", 0.04, 24, 0.0, tilt=0.2), Rung(DM1, 0.0, 12, 0.075), Rung(QPU, 0.0, 8, 3.0))
    write_ladder_sweep(tmp_path, "tilt-1", ladder=tilted, noise=0.002)
    (best,) = analyze_sweep(tmp_path, "tilt-1").fidelity["best"]
    assert best["parameters"] == {"beta": 0.5, "gamma": 1.1}  # the peak of the truth
    ranks = {r["rung"]: r for r in best["ranks"]}
    assert ranks[1]["rank"] == 1 and ranks[1]["of"] == 12
    assert ranks[0]["rank"] > 1 and ranks[0]["of"] == 24
    assert best["found_by"] == 1 and best["found_by_device"] == DM1


def test_an_unknown_sweep_gives_the_stores_message(tmp_path: Path) -> None:
    write_ladder_sweep(tmp_path, "ladder-1")
    with pytest.raises(InputError) as raised:
        load_sweep_data(tmp_path, "nope")
    with pytest.raises(InputError) as expected:
        ResultStore(tmp_path).require("nope")
    assert str(raised.value) == str(expected.value)
    assert "known sweeps: ladder-1" in str(raised.value) and "orchestrator status" in str(raised.value)


def test_a_ladder_with_only_its_first_rung_run_says_there_is_nothing_to_compare(tmp_path: Path) -> None:
    write_ladder_sweep(tmp_path, "start-1", ladder=LADDER[:1])
    result = analyze_sweep(tmp_path, "start-1")
    assert result.fidelity["pairs"] == [] and result.fidelity["best"] == []
    assert [(r["rung"], r["points"], r["analysed"]) for r in result.fidelity["rungs"]] == [(0, 24, True)]
    text = render(result, "md")
    assert "## Fidelity ladder" in text and "Only one rung has results: nothing to compare yet." in text
    assert "| metric | shared points" not in text and len(result.groups) == 3 * 24  # cut, energy, fidelity
