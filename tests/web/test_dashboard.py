"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Playwright's own browser download cannot work here, so the system Chromium is launched through
``executable_path``. Where it is missing the test skips, except in CI (``CI`` set; ``.ci/run``
installs it), where a missing browser fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.web.conftest import TOKEN, Server, sweep_body

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        message = "Debian's chromium is not installed: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def test_a_running_sweep_updates_live_and_pauses_and_resumes_with_the_token(
    server: Server, start_worker, chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    start_worker("w1", concurrency=2)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1360, "height": 1100})
        page.goto(server.url + "/")
        expect(page.locator("main")).to_contain_text("No sweeps yet")
        res = server.api("POST", "/sweeps", data=sweep_body("browser", points=100, sleep=0.4, fail_at=7))
        sweep_id = res.json()["execution_id"]
        page.get_by_role("link", name="browser").click()  # the list refreshes by itself
        expect(page.locator("#sweep-id")).to_have_text(sweep_id)
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        seen = set()
        deadline = time.monotonic() + 30
        while len(seen) < 3 and time.monotonic() < deadline:
            seen.add(int(page.locator("#finished").inner_text()))
            time.sleep(0.2)
        assert len(seen) >= 3, f"progress did not move live: {seen}"

        page.locator("#pause").click()  # asks for the token first
        page.locator("#token-input").fill(TOKEN)
        page.locator("#token-save").click()
        expect(page.locator("#state")).to_have_text("paused", timeout=10_000)
        assert server.api("GET", f"/sweeps/{sweep_id}").json()["state"] == "paused"
        page.screenshot(path=str(tmp_path / "paused.png"), full_page=True)

        page.locator("#resume").click()  # the token is remembered in this tab
        expect(page.locator("#state")).to_have_text("running", timeout=10_000)
        expect(page.locator("#state")).to_have_text("completed", timeout=90_000)
        expect(page.locator("#finished")).to_have_text("100")
        expect(page.locator("#failures")).to_contain_text("diverged")
        assert page.evaluate("window.__sameDocument") is True
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        if shots := os.environ.get("DASHBOARD_SCREENSHOTS"):
            page.screenshot(path=str(Path(shots) / "dashboard.png"), full_page=True)
            page.goto(server.url + "/#/workers")
            expect(page.locator("main")).to_contain_text("w1@")
            page.screenshot(path=str(Path(shots) / "workers.png"))
            page.goto(server.url + "/#/")
            expect(page.locator("main")).to_contain_text(sweep_id)
            page.screenshot(path=str(Path(shots) / "sweeps.png"))
        browser.close()
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def test_the_page_shows_the_sweep_offline_with_its_scripts_run(server: Server, chromium: str) -> None:
    sweep_id = server.api("POST", "/sweeps", data=sweep_body("offline", points=3)).json()["execution_id"]
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=8000",
            "--dump-dom",
            f"{server.url}/#/sweep/{sweep_id}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert f'id="sweep-id">{sweep_id}<' in dom, dom[-2000:]
