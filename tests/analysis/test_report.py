"""The report a researcher forwards: it opens with the answer, shows only what applies, and shows
every name and value from the results as text (real sweeps, see conftest.py)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import jsonschema
import pytest
from markdown_it import MarkdownIt

from analysis import JSON_SCHEMA, analyze_sweep, load_sweep_data, render, stored_analysis
from core.config import SweepConfiguration
from core.protocol import Lifecycle
from orchestrator.reports import sweep_outcome
from tests.analysis.conftest import CANCEL_AFTER, HOSTILE_LABELS, Sweeps
from tests.analysis.projects.hostile.hostile import SCRIPT_METRIC
from tests.conftest import ROOT


def _headings(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<h2>(.*?)</h2>", html)]


def test_the_json_names_the_best_configuration_and_the_html_opens_with_it(sweeps: Sweeps) -> None:
    result = analyze_sweep(sweeps.results, sweeps.grid)
    document = json.loads(render(result, "json"))
    jsonschema.validate(document, JSON_SCHEMA)
    best = {e["metric"]: e for e in document["best"]["objectives"]}
    assert set(best) == {"y", "cost_like"}
    y = [g for g in document["groups"] if g["metric"] == "y"]
    top = max(y, key=lambda g: g["mean"])
    assert best["y"]["parameters"] == top["parameters"] and best["y"]["mean"] == top["mean"]
    assert best["y"]["parameters"]["a"] == 1.0  # y = 2a + 0.5b: a at its top
    assert best["y"]["ci_low"] < best["y"]["mean"] < best["y"]["ci_high"] and best["y"]["n"] == 4
    assert best["y"]["method"] == "t" and best["y"]["feasible"] is None  # no constraints declared
    assert set(best["y"]["metrics"]) >= {"cost_like", "truth"} and len(best["y"]["runners_up"]) == 4
    low = min((g for g in document["groups"] if g["metric"] == "cost_like"), key=lambda g: g["mean"])
    assert best["cost_like"]["goal"] == "minimize" and best["cost_like"]["mean"] == low["mean"]
    assert (
        document["outcome"]["state"] == "completed" and document["outcome"]["total"] == 800
    )  # 200 points x 4 repeats

    html = render(result, "html")
    answer = html[: html.index("<h2>How does")]  # the answer comes before any figure
    assert "Completed" in answer and "every planned experiment finished" in answer
    assert "<h2>Best configuration</h2>" in answer
    for entry in best.values():
        assert f'<div class="value">{entry["mean"]:.4g}</div>' in answer
        assert f"[{entry['ci_low']:.4g}, {entry['ci_high']:.4g}]" in answer
    assert stored_analysis(sweeps.results, sweeps.grid)["best"]["objectives"]  # stored with the sweep


def test_metric_constraints_decide_feasibility_and_the_best(sweeps: Sweeps, tmp_path) -> None:
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(sweeps.results / f"sweep={sweeps.grid}", copy / f"sweep={sweeps.grid}")
    config = copy / f"sweep={sweeps.grid}" / "sweep.json"
    effective = json.loads(config.read_text())
    effective["sweep"]["constraints"] = {"metrics": ["cost_like <= 0.5"], "parameters": []}
    config.write_text(json.dumps(effective))
    result = analyze_sweep(copy, sweeps.grid)
    feasibility = result.best["feasibility"]
    assert feasibility["constraints"] == ["cost_like <= 0.5"] and 0 < feasibility["feasible"] < 200
    y = next(e for e in result.best["objectives"] if e["metric"] == "y")
    assert y["feasible"] is True and y["metrics"]["cost_like"]["mean"] <= 0.5
    assert f"{feasibility['feasible']} of 200 points meet every constraint" in render(result, "html")


def test_a_reported_stderr_gives_error_bars_and_is_not_a_metric(sweeps: Sweeps) -> None:
    data = load_sweep_data(sweeps.results, sweeps.adaptive)
    assert "metric.y_stderr" in data.frame and "metric.c" in data.frame  # the project reports both
    assert data.uncertainties == {"metric.y": "metric.y_stderr"}
    assert "metric.y_stderr" not in data.metrics and "metric.c" not in data.metrics  # c echoes an input
    result = analyze_sweep(sweeps.results, sweeps.adaptive)
    assert {g["metric"] for g in result.groups} == {"y", "truth", "cost_like"}
    assert "y_stderr" not in result.sweep["metrics"]
    y = [g for g in result.groups if g["metric"] == "y"]
    assert {g["n"] for g in y} == {1} and {g["method"] for g in y} == {"reported"}
    for g in y:  # one run each: the interval is the project's own standard error, 1.96 of them
        assert g["stderr"] == pytest.approx(0.1) and g["ci_high"] - g["ci_low"] == pytest.approx(
            2 * 1.96 * 0.1, rel=1e-3
        )
    truth = {
        json.dumps(g["parameters"], sort_keys=True): g["mean"]
        for g in result.groups
        if g["metric"] == "truth"
    }
    covered = [g["ci_low"] <= truth[json.dumps(g["parameters"], sort_keys=True)] <= g["ci_high"] for g in y]
    assert sum(covered) / len(covered) >= 0.8  # 95 % intervals over 40 points
    html = render(result, "html")
    assert (
        "the project&#x27;s reported standard error" in html
        or "the project's reported standard error" in html
    )
    assert "y_stderr" not in html.split("Reproducibility")[0]  # not tabulated as a metric anywhere
    # repeats, where there are some, still give the interval
    assert {g["method"] for g in analyze_sweep(sweeps.results, sweeps.grid).groups if g["metric"] == "y"} == {
        "t"
    }


def test_a_cancelled_sweep_has_a_report_that_says_so(sweeps: Sweeps) -> None:
    folder = sweeps.results / f"sweep={sweeps.cancelled}"
    outcome = json.loads((folder / "outcome.json").read_text())
    assert outcome["state"] == "cancelled" and "cancelled by a user" in outcome["reason"]
    stored = stored_analysis(sweeps.results, sweeps.cancelled)  # written by the coordinator
    assert stored is not None and stored["outcome"]["state"] == "cancelled"
    ran = sum(stored["summary"]["status_counts"].values())
    assert ran >= CANCEL_AFTER and stored["outcome"]["never_started"] == 40 - ran
    html = (folder / "report.html").read_text()
    assert '<div class="status cancelled"><b>Cancelled</b>' in html
    assert f"{ran} of 40 planned experiments have a result" in html
    assert f"{40 - ran} never started" in html
    assert sweeps.statuses[sweeps.cancelled].report_path == str(folder / "report.html")
    md = render(analyze_sweep(sweeps.results, sweeps.cancelled), "md")
    assert "**Cancelled**" in md


def test_timed_out_and_budgeted_outcomes_say_why() -> None:
    config = SweepConfiguration.model_validate(
        {
            "name": "s",
            "projects": [{"name": "p", "path": str(ROOT), "entry": "x:y"}],
            "parameters": {"a": [1, 2]},
            "max_duration": "90s",
            "max_experiments": 1,
        }
    )
    timed_out = sweep_outcome(Lifecycle.TIMED_OUT, {"total": "2", "n_cancelled": "1"}, config)
    assert timed_out["state"] == "timed_out" and "max_duration (90 s) reached" in timed_out["reason"]
    budgeted = sweep_outcome(Lifecycle.COMPLETED, {"total": "2", "n_cancelled": "1"}, config)
    assert "max_experiments (1) ran" in budgeted["reason"] and budgeted["never_started"] == 1


def test_no_empty_section_and_the_configuration_collapsed_at_the_end(sweeps: Sweeps) -> None:
    adaptive = render(analyze_sweep(sweeps.results, sweeps.adaptive), "html")
    headings = _headings(adaptive)
    # one objective, one project, no repeats, no validation section: none of those is printed
    assert not {"Pareto front", "Comparisons", "Validation", "Failures by error class"} & set(headings)
    assert "Did the optimizer beat random order?" in headings  # order matters when a model chose it
    for body in re.split(r"<h2>.*?</h2>", adaptive)[1:]:
        assert re.sub(r"<[^>]+>|\s", "", body), "a heading with nothing under it"
    grid = render(analyze_sweep(sweeps.results, sweeps.grid), "html")
    assert "Did the optimizer beat random order?" not in _headings(grid)  # a grid's order is no one's choice
    assert "What does each objective cost the other?" in _headings(grid)  # two objectives
    for html in (adaptive, grid):
        details = html.rindex("<details>")
        assert html.index("Effective configuration") > details and html.index("</details>") > details
        assert re.search(r"</details>\s*</body></html>\s*$", html)
        assert "with their intervals" in html  # repeats or the GP's bootstrap give intervals
    once = render(analyze_sweep(sweeps.results, sweeps.hostile), "html")  # one run per point
    sensitivity = once.split("<h2>Which parameters matter?</h2>")[1].split("<h2>")[0]
    assert "interval" not in sensitivity and "[–, –]" not in sensitivity  # no promise it cannot keep
    single = render(analyze_sweep(sweeps.results, sweeps.checked), "html")
    assert "<h2>Validation</h2>" in single  # a section that applies is there
    for sweep_id in (sweeps.grid, sweeps.adaptive, sweeps.cross, sweeps.hostile):
        md = render(analyze_sweep(sweeps.results, sweep_id), "md")
        sections = re.split(r"^## .*$", md, flags=re.M)[1:]
        assert all(s.strip() for s in sections), sweep_id


def test_early_stopping_curves_are_drawn_with_their_stops() -> None:
    from analysis.figures import intermediate

    curves = {
        "metric": "loss",
        "goal": "minimize",
        "runs": [
            {"values": [3.0, 2.0, 1.5], "stopped_at": 3, "rule": "median"},
            {"values": [1.0, 0.5, 0.3, 0.2], "stopped_at": None, "rule": None},
        ],
        "total": 2,
        "stopped": 1,
    }
    svg = intermediate(curves)
    assert svg is not None and "stopped early" in svg and "ran to the end" in svg
    assert intermediate({"metric": "loss", "runs": []}) is None


def test_markdown_with_script_and_pipes_in_names_renders_inert(sweeps: Sweeps) -> None:
    result = analyze_sweep(sweeps.results, sweeps.hostile)
    assert SCRIPT_METRIC in result.sweep["metrics"]  # the hostile names are in it
    md = render(result, "md")
    rendered = MarkdownIt("commonmark").enable("table").render(md)
    assert "<script" not in rendered and "<img" not in rendered and "<b>" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered  # shown, as text
    # no heading but ours, and every table row has its header's cells (a `|` stays in its cell)
    assert re.findall(r"<h1>", rendered) == ["<h1>"]
    assert not re.search(r"<h\d>[^<]*injected heading", rendered)
    for table in re.findall(r"<table>.*?</table>", rendered, flags=re.S):
        header = len(re.findall(r"<th[ >]", table.split("</thead>")[0]))
        for row in re.findall(r"<tr>(.*?)</tr>", table.split("</thead>")[1], flags=re.S):
            assert len(re.findall(r"<td[ >]", row)) == header, row
    html = render(result, "html")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_csv_export_defuses_formulas_but_keeps_negative_numbers(sweeps: Sweeps) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "results",
            sweeps.hostile,
            "--results-dir",
            str(sweeps.results),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            "PYTHONPATH": str(ROOT),
            "PATH": "/usr/bin:/bin",
            "ORCHESTRATOR_BROKER_URL": "redis://127.0.0.1:1/0",
        },
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    labels = {r["param.label"] for r in rows}
    assert "'" + HOSTILE_LABELS[3] in labels and HOSTILE_LABELS[3] not in labels
    assert {float(r["param.x"]) for r in rows} == {-1.5, 2.0}  # numbers stay numbers
    assert all(not cell.startswith(("=", "+", "@")) for r in rows for cell in r.values())
    negative = [r[f"metric.{SCRIPT_METRIC}"] for r in rows if r[f"metric.{SCRIPT_METRIC}"]]
    assert "1.5" in negative  # -x for x = -1.5: a number, written as it is
    assert any(value.startswith("-") for value in negative)


def test_a_name_that_looks_like_tex_is_drawn_as_text() -> None:
    import pandas as pd

    from analysis.figures import metric_vs_parameters

    column = "param.$\\undefinedmacro{$"  # matplotlib's mathtext raised on it: no report at all
    groups = pd.DataFrame(
        {
            "project": "p",
            "metric": "m",
            "mean": [1.0, 2.0],
            "ci_low": None,
            "ci_high": None,
            column: [1.0, 2.0],
        }
    )
    svg = metric_vs_parameters(groups, "m", [column])
    assert svg is not None and "$\\undefinedmacro{$" in svg


def test_analysis_render_stays_the_function_after_drawing_a_report(sweeps: Sweeps) -> None:
    import analysis

    result = analyze_sweep(sweeps.results, sweeps.hostile)
    for fmt in ("html", "md", "html"):  # the HTML module once took the name `analysis.render`
        assert analysis.render(result, fmt)
