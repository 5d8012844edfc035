"""Screenshots for the README, taken from a real ``orchestrator serve`` in headless Chromium.

    .venv/bin/python docs/screenshots.py dashboard  # writes docs/images/dashboard-*.png

It serves embedded (a private Redis and local workers) in a temporary folder, submits the example
sweeps over the API, and photographs each dashboard view once the sweeps have results. Needs
Debian's ``chromium`` (``apt-get install chromium``) and the ``test`` extra (Playwright).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "screenshots-token-not-a-secret"
CURVES = ROOT / "tests" / "fixtures" / "projects" / "curves"


class Serve:
    """``orchestrator serve`` (embedded) in ``folder``, its projects taken from the repository."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "ORCHESTRATOR_API_TOKEN": TOKEN,
            "ORCHESTRATOR_PROJECT_ROOTS": os.pathsep.join(
                [str(ROOT / "examples" / "projects"), str(ROOT / "tests")]
            ),
        }
        self.log = open(folder / "serve.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "serve", "--port", str(self.port), "--workers", "2"],
            cwd=folder,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/api/v1/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.3)
        raise TimeoutError(f"serve did not start; see {folder / 'serve.log'}")

    def submit(self, sweep: dict[str, Any]) -> str:
        res = requests.post(
            f"{self.url}/api/v1/sweeps",
            data=yaml.safe_dump(sweep, sort_keys=False),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-yaml"},
            timeout=60,
        )
        res.raise_for_status()
        return str(res.json()["execution_id"])

    def status(self, sweep_id: str) -> dict[str, Any]:
        return dict(requests.get(f"{self.url}/api/v1/sweeps/{sweep_id}", timeout=30).json())

    def cancel(self, sweep_id: str) -> None:
        requests.post(
            f"{self.url}/api/v1/sweeps/{sweep_id}/cancel",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )

    def wait(self, sweep_id: str, done: Any, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(sweep_id)
            if done(status):
                return status
            time.sleep(1)
        raise TimeoutError(f"sweep {sweep_id} did not get there: {status['state']} {status['counts']}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def example(file: str, **changes: Any) -> dict[str, Any]:
    """An example sweep with its project paths made absolute (the server's roots hold them)."""
    sweep = yaml.safe_load((ROOT / "examples" / "sweeps" / f"{file}.yaml").read_text())
    for project in sweep["projects"]:
        project["path"] = str((ROOT / "examples" / "sweeps" / project["path"]).resolve())
    return {**sweep, **changes}


def curves_sweep() -> dict[str, Any]:
    """A project that reports a curve while it runs, under the median stopping rule."""
    return {
        "name": "learning_curves",
        "projects": [{"name": "curves", "path": str(CURVES), "entry": "curves:train"}],
        "parameters": {
            "x": [0.7, 0.6, 0.8, 0.65, 0.75, 0.5, 0.0, 1.4, 0.1, 1.3, 0.2, 1.2, 0.3, 1.1, 0.9, 0.4],
            "steps": [12],
            "pause": [0.05],
        },
        "objectives": [{"metric": "loss", "goal": "minimize"}],
        "adaptive_sampling": True,  # early stopping is for adaptive sweeps
        "optimizer": {
            "early_stopping": {"enabled": True, "rule": "median", "grace_steps": 3, "min_completed": 3}
        },
        "seed": 1,
    }


@contextmanager
def browser(width: int = 1360, height: int = 1000) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
        try:
            yield page
        finally:
            chromium.close()


def shoot_card(page: Any, card: str, path: Path) -> None:
    """One panel of the sweep page, by its id (``card-posterior``, ``card-trials``...)."""
    locator = page.locator(f"#{card}")
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(path))


def shoot_dashboard(serve: Serve, out: Path) -> list[Path]:
    """The dashboard's views: the sweep page and its panels, the list, sweeps side by side, /docs."""
    from playwright.sync_api import expect

    adaptive = serve.submit(example("qaoa_adaptive"))
    shots: list[Path] = []
    with browser() as page:  # the belief while the sweep runs: results so far and the next picks
        page.goto(f"{serve.url}/#/sweep/{adaptive}")
        expect(page.locator("#posterior")).to_have_attribute("data-ready", "true", timeout=120_000)
        page.wait_for_timeout(500)
        shots.append(out / "dashboard-posterior-live.png")
        shoot_card(page, "card-posterior", shots[-1])
    budgeted = serve.submit(example("qaoa_maxcut", max_experiments=10, name="qaoa_maxcut_budget"))
    other_seed = serve.submit(example("qaoa_adaptive", seed=12, name="qaoa_adaptive_seed12"))
    grid = serve.submit(example("vqe_h2"))
    curves = serve.submit(curves_sweep())
    serve.wait(budgeted, lambda s: s["done"])
    serve.wait(grid, lambda s: s["done"])
    serve.wait(curves, lambda s: s["done"])
    serve.wait(adaptive, lambda s: s["done"], timeout=600)
    serve.wait(other_seed, lambda s: s["done"], timeout=600)
    cancelled = serve.submit(example("quickstart", name="quickstart_cancelled"))
    serve.wait(cancelled, lambda s: s["counts"].get("completed", 0) >= 5)
    serve.cancel(cancelled)
    serve.wait(cancelled, lambda s: s["done"])
    with browser() as page:
        page.goto(f"{serve.url}/#/sweep/{adaptive}")
        expect(page.locator("#posterior svg.heat").first).to_be_visible(timeout=60_000)
        expect(page.locator("#parallel svg")).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1500)
        shots.append(out / "dashboard-sweep.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        for card, name in [
            ("card-posterior", "posterior"),
            ("card-parallel", "parallel"),
            ("card-slices", "slices"),
            ("card-best-trial", "best-trial"),
            ("card-importance", "importance"),
        ]:
            shots.append(out / f"dashboard-{name}.png")
            shoot_card(page, card, shots[-1])
        page.locator("#trial-filter").fill("approx_ratio > 0.9; gamma > 2")  # filtered, best first
        page.locator("#trial-filter").press("Enter")
        page.locator("#trials th", has_text="approx_ratio").first.click()
        page.locator("#trials th", has_text="approx_ratio ▲").click()
        expect(page.locator("#trials th", has_text="approx_ratio ▼")).to_be_visible()
        shots.append(out / "dashboard-trials.png")
        shoot_card(page, "card-trials", shots[-1])
        page.goto(f"{serve.url}/#/sweep/{curves}")
        expect(page.locator("#curves svg")).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1000)
        shots.append(out / "dashboard-curves.png")
        shoot_card(page, "card-curves", shots[-1])
        page.goto(f"{serve.url}/#/sweep/{budgeted}")
        expect(page.locator("#progress-line")).to_contain_text("of max 10", timeout=30_000)
        shots.append(out / "dashboard-progress-budget.png")
        shoot_card(page, "card-progress", shots[-1])
        page.goto(f"{serve.url}/#/")
        expect(page.locator("main")).to_contain_text(cancelled)
        shots.append(out / "dashboard-sweeps.png")
        page.screenshot(path=str(shots[-1]))
        page.goto(f"{serve.url}/#/compare/{adaptive},{other_seed}")
        expect(page.locator("#compare-history svg")).to_be_visible(timeout=30_000)
        shots.append(out / "dashboard-compare.png")
        page.locator("main").screenshot(path=str(shots[-1]))
        page.route(
            "**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort()
        )
        page.goto(f"{serve.url}/docs")
        expect(page.locator(".swagger-ui .info")).to_be_visible(timeout=30_000)
        shots.append(out / "dashboard-docs.png")
        page.screenshot(path=str(shots[-1]))
    return shots


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as folder:
        serve = Serve(Path(folder))
        try:
            for path in shoot_dashboard(serve, IMAGES):
                print(path.relative_to(ROOT))
        finally:
            serve.stop()


if __name__ == "__main__":
    main()
