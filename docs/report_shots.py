"""The README's pictures: sample sweeps run embedded, their reports, screenshots in headless Chromium.

    .venv/bin/python docs/report_shots.py                      # every view, into docs/images/*.png
    .venv/bin/python docs/report_shots.py --workdir /tmp/shots # keep the sweeps for another run
    .venv/bin/python docs/report_shots.py --only report-grid   # one view

Each view is one small function that writes one ``docs/images/<name>.png``; a run builds the sample
sweeps once (a private Redis and local workers, about two minutes) and reuses them when
``--workdir`` already holds them. Needs Playwright and Debian's Chromium (``/usr/bin/chromium``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not

DOCS = ROOT / "docs" / "images"
EXAMPLES = ROOT / "examples"
CURVES = ROOT / "benchmarks" / "projects" / "curves"
CHROMIUM = "/usr/bin/chromium"
WIDTH = 1200  # the page width a reader's laptop shows

# -- the sample sweeps ---------------------------------------------------------------------------


def _example(example: str, **changes: Any) -> dict[str, Any]:
    """An example sweep file as a dict, its project paths made absolute, with ``changes``."""
    import yaml

    sweep = yaml.safe_load((EXAMPLES / "sweeps" / f"{example}.yaml").read_text())
    for project in sweep["projects"]:
        project["path"] = str((EXAMPLES / "sweeps" / project["path"]).resolve())
    return {**sweep, **changes}


def _training(name: str, grid: list[float], **changes: Any) -> dict[str, Any]:
    """A training-style project reporting a loss curve (benchmarks/projects/curves)."""
    return {
        "name": name,
        "projects": [
            {
                "name": "train",
                "path": str(CURVES),
                "entry": "curves:train",
                "fixed": {"steps": 20, "seconds": 0.6},
            }
        ],
        "parameters": {"x": grid},
        "objectives": [{"metric": "loss", "goal": "minimize"}],
        "seed": 0,
        **changes,
    }


SWEEPS: dict[str, Callable[[], dict[str, Any]]] = {
    # a full grid of four parameters (two categorical), one objective
    "grid": lambda: _example(
        "qaoa_maxcut",
        parameters={
            "gamma": {"start": 0.2, "stop": 1.4, "num": 4},
            "beta": [0.2, 0.4, 0.6],
            "p": [1, 2],
            "graph": {"choices": ["triangle", "square"]},
            "shots": [200],
        },
        repeats=2,
    ),
    # the project reports its own standard error (p_correlated_stderr) and echoes shots
    "stderr": lambda: _example("quickstart"),
    "adaptive": lambda: _example("qaoa_adaptive"),
    # a Sobol sample of the QAOA angles, all run: no model chooses the order
    "sampled": lambda: _example(
        "qaoa_adaptive",
        name="qaoa_sobol",
        parameters={
            "gamma": {"sample": "sobol", "low": 0.0, "high": 3.14159, "n": 64},
            "beta": {"sample": "sobol", "low": 0.0, "high": 1.5708, "n": 64},
            "p": [1],
            "graph": ["ring5"],
            "shots": [400],
        },
        adaptive_sampling=False,
        max_experiments=None,
    ),
    "early-stopping": lambda: _training(
        "early_stopping",
        [round(0.05 * i, 2) for i in range(21)],
        optimizer={
            "early_stopping": {
                "enabled": True,
                "rule": "median",
                "grace_steps": 4,
                "min_completed": 4,
                "max_stopped_share": 0.8,
            }
        },
    ),
}
CANCEL_AFTER = 6  # runs of the cancelled sample before it is cancelled


def build_sweeps(workdir: Path) -> dict[str, str]:
    """Run the sample sweeps (and one cancelled part-way) once; sweep ids by sample name."""
    index = workdir / "sweeps.json"
    if index.is_file():
        return json.loads(index.read_text())
    from orchestrator import Orchestrator

    ids: dict[str, str] = {}
    with Orchestrator(workers=2, results_dir=workdir / "results", state_dir=workdir / "state") as orch:
        for name, make in SWEEPS.items():
            ids[name] = orch.run(make(), timeout=900).execution_id
            print(f"{name}: {ids[name]} {orch.status(ids[name]).state}", flush=True)
        cancelled = orch.submit(_training("cancelled", [round(0.02 * i, 2) for i in range(50)])).execution_id
        while orch.status(cancelled).finished < CANCEL_AFTER:
            time.sleep(0.2)
        orch.cancel(cancelled)
        ids["cancelled"] = cancelled
        print(f"cancelled: {cancelled} {orch.wait(cancelled, timeout=300).state}", flush=True)
    index.write_text(json.dumps(ids, indent=2))
    return ids


# -- rendering and screenshots -------------------------------------------------------------------


def render_report(results: Path, sweep_id: str, out: Path) -> Path:
    """The sweep's HTML report, written to ``out``."""
    from analysis import analyze_sweep, render

    out.write_text(render(analyze_sweep(results, sweep_id), "html"), encoding="utf-8")
    return out


def screenshot(page: Any, html: Path, png: Path, height: int | None = None, start: str | None = None) -> Path:
    """A PNG of ``html``: the whole page, or ``height`` pixels from its top (or from the heading
    that reads ``start``)."""
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    if height is None:
        page.screenshot(path=str(png), full_page=True)
        return png
    top = 0.0
    if start is not None:
        box = page.locator("h2", has_text=start).first.bounding_box()
        top = max(0.0, box["y"] - 20) if box else 0.0
    page.screenshot(path=str(png), full_page=True, clip={"x": 0, "y": top, "width": WIDTH, "height": height})
    return png


def report_view(
    sample: str, height: int | None = None, start: str | None = None
) -> Callable[[Any, Path, dict[str, str], Path], Path]:
    """A view: the report of one sample sweep (from the heading ``start``, if given)."""

    def view(page: Any, workdir: Path, ids: dict[str, str], out: Path) -> Path:
        html = render_report(workdir / "results", ids[sample], workdir / f"report-{sample}.html")
        return screenshot(page, html, out, height, start)

    return view


VIEWS: dict[str, Callable[[Any, Path, dict[str, str], Path], Path]] = {
    "report-grid": report_view("grid", 2400),
    "report-adaptive": report_view("adaptive", 2400),
    "report-sampled": report_view("sampled", 2000),
    "report-early-stopping": report_view("early-stopping", 620, start="Did early stopping"),
    "report-cancelled": report_view("cancelled", 900),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="keep the sample sweeps here")
    parser.add_argument("--out", type=Path, default=DOCS, help="where the PNGs go (default: docs/images/)")
    parser.add_argument("--only", action="append", choices=sorted(VIEWS), help="these views only")
    parser.add_argument("--full", action="store_true", help="whole pages, not the top of each")
    args = parser.parse_args(argv)
    import tempfile

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        ids = build_sweeps(workdir)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            for name in args.only or VIEWS:
                view = report_view(name.removeprefix("report-")) if args.full else VIEWS[name]
                print(view(page, workdir, ids, args.out / f"{name}.png"))
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
