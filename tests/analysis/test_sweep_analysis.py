"""The analysis of real sweeps: Parquet written by real runs (see conftest.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from analysis import (
    JSON_SCHEMA,
    analyze,
    analyze_sweep,
    load_sweep_data,
    on_sweep_completed,
    render,
    stored_analysis,
)
from tests.analysis.conftest import Sweeps
from tests.conftest import ROOT


def _coverage(groups: pd.DataFrame, keys: list[str]) -> float:
    y = groups[groups["metric"] == "y"].set_index(keys)
    truth = groups[groups["metric"] == "truth"].set_index(keys)["mean"]
    return float(((y["ci_low"] <= truth) & (truth <= y["ci_high"])).mean())


def test_intervals_cover_the_truth_at_their_nominal_rate(sweeps: Sweeps) -> None:
    data = load_sweep_data(sweeps.results, sweeps.grid)
    assert len(data.completed) == 800  # 200 points x 4 repeats
    for confidence, low, high in ((0.95, 0.90, 0.99), (0.5, 0.38, 0.62)):
        # binomial(200, level): these bounds fail by chance with probability < 0.1 %
        groups = analyze(data, confidence=confidence).groups_frame()
        assert len(groups[groups["metric"] == "y"]) == 200
        assert low <= _coverage(groups, ["param.a", "param.b", "param.c"]) <= high


def test_sensitivity_ranks_the_dominant_parameter_first_and_the_idle_one_last(sweeps: Sweeps) -> None:
    for sweep_id, method in ((sweeps.grid, "grid"), (sweeps.adaptive, "surrogate")):
        result = analyze_sweep(sweeps.results, sweep_id)
        indices = [e for e in result.sensitivity["indices"] if e["metric"] == "y"]
        assert [e["parameter"] for e in indices] == ["a", "b", "c"], sweep_id
        assert {e["method"] for e in indices} == {method}
        low, high = indices[-1]["first_order_ci"]
        assert low <= 0 <= high, (sweep_id, indices[-1])
        assert indices[0]["first_order_ci"][0] > 0.8  # y = 2a + 0.5b: a explains 94 %
    adaptive = analyze_sweep(sweeps.results, sweeps.adaptive)
    scales = {e["parameter"]: e["length_scale"] for e in adaptive.sensitivity["length_scales"]}
    assert scales["a"] < scales["b"] < scales["c"]  # the GP agrees: a varies fastest


def test_pareto_front_matches_brute_force(sweeps: Sweeps) -> None:
    data = load_sweep_data(sweeps.results, sweeps.grid)
    result = analyze(data)
    means = data.completed.groupby(["param.a", "param.b", "param.c"])[["metric.y", "metric.cost_like"]].mean()
    brute = set()
    for point, (y, cost) in means.iterrows():
        dominated = ((means["metric.y"] >= y) & (means["metric.cost_like"] <= cost)) & (
            (means["metric.y"] > y) | (means["metric.cost_like"] < cost)
        )
        if not dominated.any():
            brute.add(point)
    front = {tuple(p["parameters"][k] for k in "abc") for p in result.pareto["front"]}
    assert front == brute and len(result.pareto["dominated"]) == 200 - len(front)
    assert result.pareto["hypervolume"] > 0


def test_convergence_traces_best_so_far_and_random_order_for_adaptive(sweeps: Sweeps) -> None:
    grid = analyze_sweep(sweeps.results, sweeps.grid).convergence["y"]
    assert grid["best"] == list(np.maximum.accumulate(grid["value"]))
    assert grid["random_order_best"] == []  # a grid's order is not a model's choice
    adaptive = analyze_sweep(sweeps.results, sweeps.adaptive).convergence["y"]
    assert len(adaptive["runs"]) == 40 and len(adaptive["random_order_best"]) == 40
    assert np.all(np.diff(adaptive["random_order_best"]) >= -1e-12)


def test_cross_project_example_compares_with_corrected_p_values(sweeps: Sweeps) -> None:
    result = analyze_sweep(sweeps.results, sweeps.cross)
    cross = result.cross_project
    assert "fidelity" in cross["metrics"]
    pair = next(p for p in cross["pairs"] if p["metric"] == "fidelity")
    assert (pair["a"], pair["b"], pair["n_points"]) == ("ghz_noise", "repetition_code", 4)
    assert pair["p_adjusted"] >= pair["p_value"]
    points = [p for p in cross["points"] if p["metric"] == "fidelity" and p["parameters"]["noise"] == 0.2]
    # at 20 % noise a 3-qubit GHZ state is far worse than a distance-3 repetition code
    assert points[0]["test"] == "two_proportion_z" and points[0]["significant"]
    assert points[0]["mean_diff"] < 0 and points[0]["p_adjusted"] >= points[0]["p_value"]
    assert any(c["kind"] == "projects" for c in result.comparisons)
    fidelity = [g for g in result.groups if g["metric"] == "fidelity"]
    assert {g["method"] for g in fidelity} == {"wilson"}  # shot-estimated: Wilson, one run is enough
    assert all(0 <= g["ci_low"] <= g["mean"] <= g["ci_high"] <= 1 for g in fidelity)


def test_json_report_follows_the_documented_schema(sweeps: Sweeps) -> None:
    for sweep_id in (sweeps.grid, sweeps.adaptive, sweeps.cross):
        document = json.loads(render(analyze_sweep(sweeps.results, sweep_id), "json"))
        jsonschema.validate(document, JSON_SCHEMA)
        group = document["groups"][0]
        assert {
            "project",
            "parameters",
            "metric",
            "n",
            "mean",
            "stderr",
            "ci_low",
            "ci_high",
            "confidence",
        } <= set(group)
    single = json.loads(render(analyze_sweep(sweeps.results, sweeps.adaptive), "json"))
    # keys that do not apply are empty, not missing
    assert single["pareto"]["front"] == [] and single["cross_project"]["pairs"] == []
    assert single["validation"]["checks"] == []


def test_html_report_is_self_contained_with_figures(sweeps: Sweeps) -> None:
    text = render(analyze_sweep(sweeps.results, sweeps.grid), "html")
    assert text.count("<svg") >= 3
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", text)
    external = [link for link in links if not link.startswith(("#", "data:"))]
    assert external == [], external[:5]
    assert "@import" not in text and "url(http" not in text


def test_validation_flags_violations_in_the_report(sweeps: Sweeps, tmp_path: Path) -> None:
    copy = tmp_path / "results"
    shutil.copytree(sweeps.results / f"sweep={sweeps.grid}", copy / f"sweep={sweeps.grid}")
    config = copy / f"sweep={sweeps.grid}" / "sweep.json"
    effective = json.loads(config.read_text())
    effective["sweep"]["validation"] = {
        # right physics; with 4 repeats (mean - truth) / stderr follows Student's t with 3 dof
        "y": {"theory": "2 * a + 0.5 * b", "tolerance": 6},
        "cost_like": {"theory": "(1 - a)**2 + b + c", "tolerance": 6},  # wrong: c does not enter
        "truth": {"bounds": [0, 2]},  # 2a + 0.5b reaches 2.5
    }
    config.write_text(json.dumps(effective))
    result = analyze_sweep(copy, sweeps.grid)
    checks = pd.DataFrame(result.validation["checks"])
    y = checks[checks["metric"] == "y"]
    assert (y["status"] == "ok").mean() > 0.95 and (y["status"] == "violation").mean() < 0.03
    wrong = checks[checks["metric"] == "cost_like"]
    c = wrong["parameters"].map(lambda p: p["c"])
    # 20 standard errors off on average; an estimated stderr from 4 runs is sometimes 2x too big
    far = wrong.loc[c == 1.0, "status"]
    assert (
        (far != "ok").all()
        and (far == "violation").mean() >= 0.8
        and (wrong.loc[c == 0.0, "status"] == "ok").mean() >= 0.92
    )
    rows = result.validation["rows"]
    assert rows and all(r["validation"].startswith("violation: truth=") for r in rows)
    html = render(result, "html")
    assert "violation" in html and "theory (1 - a)**2 + b + c" in html


def test_on_sweep_completed_writes_once_and_never_raises(sweeps: Sweeps, tmp_path: Path) -> None:
    copy = tmp_path / "results"
    shutil.copytree(sweeps.results / f"sweep={sweeps.cross}", copy / f"sweep={sweeps.cross}")
    first = on_sweep_completed(copy, sweeps.cross)
    report = copy / f"sweep={sweeps.cross}" / "report.html"
    assert first == str(report) and report.is_file()  # the location: a local path, or an s3:// URI
    assert on_sweep_completed(copy, sweeps.cross) == first  # twice: replaced, not duplicated
    stored = stored_analysis(copy, sweeps.cross)
    assert stored is not None and stored["cross_project"]["metrics"]
    assert sorted(p.name for p in report.parent.iterdir() if p.is_file()) == [
        "analysis.json",
        "outcome.json",  # how the sweep ended, written by the coordinator
        "report.html",
        "sweep.json",
    ]
    assert on_sweep_completed(copy, "no-such-sweep") is None
    assert on_sweep_completed(tmp_path / "nowhere", sweeps.cross) is None


def _report(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A dead broker URL: the command must not need one.
    env = {
        "ORCHESTRATOR_BROKER_URL": "redis://127.0.0.1:1/0",
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "report", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_report_command_works_on_a_copy_with_no_broker(sweeps: Sweeps, tmp_path: Path) -> None:
    copy = tmp_path / "results"
    shutil.copytree(sweeps.results / f"sweep={sweeps.cross}", copy / f"sweep={sweeps.cross}")
    done = _report(
        sweeps.cross, "--format", "json", "-o", "out.json", "--results-dir", str(copy), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    jsonschema.validate(json.loads((tmp_path / "out.json").read_text()), JSON_SCHEMA)
    html = _report(sweeps.cross, "--results-dir", str(copy), cwd=tmp_path)
    assert html.returncode == 0, html.stderr
    assert (copy / f"sweep={sweeps.cross}" / "report.html").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-sweep"], "no results for 'no-such-sweep'"),
        (["{cross}", "-o", "missing-folder/report.html"], "cannot write"),
        (["{cross}", "-o", "a-file/report.html"], "cannot write"),
    ],
)
def test_report_bad_input_exits_2_and_writes_nothing(
    sweeps: Sweeps, tmp_path: Path, args: list[str], message: str
) -> None:
    copy = tmp_path / "results"
    shutil.copytree(sweeps.results / f"sweep={sweeps.cross}", copy / f"sweep={sweeps.cross}")
    (tmp_path / "a-file").write_text("not a folder")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    args = [a.format(cross=sweeps.cross) for a in args]
    done = _report(*args, "--results-dir", str(copy), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in " ".join(done.stderr.split())
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_analysis_never_imports_the_broker_side() -> None:
    code = (
        "import sys, analysis, analysis.html_report, analysis.markdown, analysis.publish, analysis.figures, analysis.surrogate;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'redis', 'celery', 'kombu', 'workers'});"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def test_validation_spec_errors_name_the_field() -> None:
    from analysis import check_spec
    from core.errors import InputError

    with pytest.raises(InputError, match="validation.fidelty.*unknown metric 'fidelty'"):
        check_spec({"fidelty": {"bounds": [0, 1]}}, ["noise"], ["fidelity"])
    with pytest.raises(InputError, match=r"validation.fidelity.theory.*unknown parameter\(s\) \['nois'\]"):
        check_spec({"fidelity": {"theory": "(1 - nois)**2"}}, ["noise"], ["fidelity"])
    with pytest.raises(InputError, match="not allowed"):
        check_spec({"fidelity": {"theory": "__import__('os')"}}, ["noise"], ["fidelity"])
    check_spec({"fidelity": {"theory": "(1 - noise)**2", "tolerance": 3}}, ["noise"], ["fidelity"])
