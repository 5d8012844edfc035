"""The dashboard's views in Debian's headless Chromium, over a real ``serve`` and real workers:
the trial table, parallel coordinates and the live posterior, progress under a run budget, and
``/docs`` with the network blocked."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Server, analytic_body, sweep_body, wait_done

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def page() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = "Debian's chromium is not installed: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser.new_page(viewport={"width": 1360, "height": 1000})
        browser.close()


def column(page: Any, name: str) -> list[float]:
    """The numbers in a trial-table column, top to bottom."""
    headers = page.locator("#trials thead th").all_inner_texts()
    at = next(i for i, h in enumerate(headers) if h.strip(" ▲▼") == name)
    cells = page.locator(f"#trials tbody tr td:nth-child({at + 1})").all_inner_texts()
    return [float(c.replace(",", "")) for c in cells]


def test_the_trial_table_sorts_and_filters_on_the_server(server: Server, start_worker, page: Any) -> None:
    from playwright.sync_api import expect

    start_worker("w1", concurrency=2)
    sweep_id = server.api("POST", "/sweeps", data=sweep_body("table", points=12)).json()["execution_id"]
    wait_done(server, sweep_id)
    page.goto(f"{server.url}/#/sweep/{sweep_id}")
    expect(page.locator("#trial-count")).to_have_text("1–12 of 12")

    page.locator("#trials th", has_text="y").first.click()
    expect(page.locator("#trials th", has_text="y ▲")).to_be_visible()
    ys = column(page, "y")
    assert ys == sorted(ys) and ys[0] == 0.0, ys  # (x - 3)^2: the minimum first
    page.locator("#trials th", has_text="y ▲").click()
    expect(page.locator("#trials th", has_text="y ▼")).to_be_visible()
    ys = column(page, "y")
    assert ys == sorted(ys, reverse=True) and ys[0] == 64.0, ys  # x = 11

    page.locator("#trial-filter").fill("x >= 8; status = completed")
    page.locator("#trial-filter").press("Enter")
    expect(page.locator("#trial-count")).to_have_text("1–4 of 4 (filtered from 12)")
    assert sorted(column(page, "x")) == [8.0, 9.0, 10.0, 11.0]

    page.locator("#trial-filter").fill("x >= many")
    page.locator("#trial-filter").press("Enter")
    expect(page.locator("#trial-error")).to_contain_text("'x' is numeric")


def test_parallel_coordinates_and_the_posterior_follow_a_running_adaptive_sweep(
    server: Server, start_worker, page: Any
) -> None:
    from playwright.sync_api import expect

    start_worker("w1", concurrency=2)
    res = server.api("POST", "/sweeps", data=analytic_body("belief", 256, 40, delay=[0.4]))
    sweep_id = res.json()["execution_id"]
    page.goto(f"{server.url}/#/sweep/{sweep_id}")
    posterior = page.locator("#posterior")
    expect(posterior).to_have_attribute("data-ready", "true", timeout=90_000)
    expect(posterior.locator("svg.heat")).to_have_count(2)  # the mean and the uncertainty
    first_refit = posterior.get_attribute("data-refit-at")
    first_seen = int(posterior.get_attribute("data-observed") or 0)
    assert server.api("GET", f"/sweeps/{sweep_id}").json()["state"] == "running"
    assert posterior.locator("svg.heat").first.locator("circle.m-observed").count() == first_seen > 0

    # a later refit redraws it in place, with more results on it
    expect(posterior).not_to_have_attribute("data-refit-at", first_refit or "", timeout=60_000)
    deadline = time.monotonic() + 60
    while int(posterior.get_attribute("data-observed") or 0) <= first_seen and time.monotonic() < deadline:
        time.sleep(0.3)
    assert int(posterior.get_attribute("data-observed") or 0) > first_seen

    lines = page.locator("#parallel svg.parallel polyline")
    expect(lines.first).to_be_attached(timeout=30_000)
    assert lines.count() >= first_seen
    assert page.locator("#parallel svg text.label").all_text_contents() == ["x", "y", "score"]


def test_a_budgeted_sweep_reads_n_of_max_n_and_the_rest_not_run(
    server: Server, start_worker, page: Any
) -> None:
    from playwright.sync_api import expect

    start_worker("w1", concurrency=2)
    body = sweep_body("budget", points=12, max_experiments=5)
    sweep_id = server.api("POST", "/sweeps", data=body).json()["execution_id"]
    wait_done(server, sweep_id)
    page.goto(f"{server.url}/#/sweep/{sweep_id}")
    expect(page.locator("#progress-line")).to_have_text("5 of max 5")
    expect(page.locator("#progress-notes")).to_have_text("7 of 12 not run (run budget)")
    expect(page.locator("#progress .legend")).not_to_contain_text("cancelled")
    page.goto(f"{server.url}/#/")
    expect(page.locator(f"tr[data-id='{sweep_id}']")).to_contain_text("5 of max 5")


def test_a_cancelled_sweep_reads_what_ran_and_the_rest_not_run(
    server: Server, start_worker, page: Any
) -> None:
    from playwright.sync_api import expect

    start_worker("w1", concurrency=1)
    sweep_id = server.api("POST", "/sweeps", data=sweep_body("cut", points=30, sleep=0.3)).json()[
        "execution_id"
    ]
    deadline = time.monotonic() + 60
    while server.api("GET", f"/sweeps/{sweep_id}").json()["counts"].get("completed", 0) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    server.api("POST", f"/sweeps/{sweep_id}/cancel")
    status = wait_done(server, sweep_id)
    ran = status["counts"]["completed"]
    page.goto(f"{server.url}/#/sweep/{sweep_id}")
    expect(page.locator("#progress-line")).to_have_text(f"{ran} of 30")
    expect(page.locator("#progress-notes")).to_have_text(f"{30 - ran} of 30 not run (cancelled)")
    expect(page.locator("#progress .bar .s-not_run")).to_have_count(1)


def test_docs_render_with_the_network_blocked(server: Server, page: Any) -> None:
    from playwright.sync_api import expect

    outside: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(f"{server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("quantum-orchestrator", timeout=30_000)
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/sweeps/{sweep_id}/trials")
    assert outside == []
