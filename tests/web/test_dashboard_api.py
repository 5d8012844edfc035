"""The endpoints behind the dashboard's views, over a real ``serve`` and real workers."""

from __future__ import annotations

from tests.web.conftest import Server, analytic_body, sweep_body, wait_done


def test_trials_are_paged_sorted_and_filtered_and_a_bad_filter_says_how_to_write_one(
    server: Server, start_worker
) -> None:
    start_worker("w1", concurrency=2)
    sweep_id = server.api("POST", "/sweeps", data=sweep_body("trials", points=30)).json()["execution_id"]
    wait_done(server, sweep_id)

    page = server.api("GET", f"/sweeps/{sweep_id}/trials?sort=y&order=desc&offset=2&limit=5").json()
    assert (page["count"], page["total"], page["offset"]) == (30, 30, 2)
    assert [r["metric.y"] for r in page["rows"]] == [(x - 3.0) ** 2 for x in (27, 26, 25, 24, 23)]
    assert "extra" not in page["columns"] and "log" not in page["columns"]

    page = server.api("GET", f"/sweeps/{sweep_id}/trials", params={"filter": "x < 3 and y > 1", "sort": "x"})
    assert [r["param.x"] for r in page.json()["rows"]] == [0, 1]
    assert page.json()["total"] == 2

    bad = server.api("GET", f"/sweeps/{sweep_id}/trials", params={"filter": "energy < 1"})
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["field"] == "filter" and "no column 'energy'" in error["message"]
    assert "x" in error["fix"] and "y" in error["fix"]
    assert server.api("GET", "/sweeps/nope/trials").status_code == 404


def test_insights_give_the_best_trial_and_compare_puts_sweeps_side_by_side(
    server: Server, start_worker
) -> None:
    start_worker("w1", concurrency=2)
    grid = server.api(
        "POST", "/sweeps", data=sweep_body("grid", points=8, objectives=[{"metric": "y", "goal": "minimize"}])
    ).json()["execution_id"]
    budget = server.api(
        "POST",
        "/sweeps",
        data=sweep_body(
            "budget", points=8, max_experiments=3, objectives=[{"metric": "y", "goal": "minimize"}], seed=2
        ),
    ).json()["execution_id"]
    wait_done(server, grid)
    wait_done(server, budget)

    insights = server.api("GET", f"/sweeps/{grid}/insights").json()
    assert insights["metric"] == "y" and insights["parameters"] == ["x"]
    (best,) = insights["best"]
    assert (best["value"], best["parameters"], best["completed"]) == (0.0, {"x": 3}, 8)
    assert [e["parameter"] for e in insights["importance"]] == ["x"]

    side = server.api("GET", "/compare", params=[("ids", grid), ("ids", budget)]).json()
    assert [(s["execution_id"], s["runs"], s["max_experiments"]) for s in side] == [
        (grid, 8, None),
        (budget, 3, 3),
    ]
    assert side[0]["best"][0]["value"] == 0.0
    assert server.api("GET", "/compare", params={"ids": "nope"}).status_code == 404


def test_the_posterior_waits_for_a_model_and_names_the_parameters_it_can_show(
    server: Server, start_worker
) -> None:
    start_worker("w1", concurrency=2)
    grid = server.api("POST", "/sweeps", data=sweep_body("nomodel", points=4)).json()["execution_id"]
    view = server.api("GET", f"/sweeps/{grid}/posterior").json()
    assert view["ready"] is False and "not adaptive" in view["reason"]

    adaptive = server.api("POST", "/sweeps", data=analytic_body("model", 64, 12)).json()["execution_id"]
    wait_done(server, adaptive)
    view = server.api("GET", f"/sweeps/{adaptive}/posterior?x=y&y=x&size=12").json()
    assert view["ready"] is True and (view["x"]["name"], view["y"]["name"]) == ("y", "x")
    assert len(view["mean"]) == len(view["std"]) == 12 and len(view["mean"][0]) == 12
    assert all(s >= 0 for row in view["std"] for s in row)
    assert len(view["observed"]) == 12 and view["incumbent"] is not None
    # the model's mean is highest near the known optimum (x, y) = (0.7, 0.2)
    top = max(
        (
            (m, view["y"]["values"][r], view["x"]["values"][c])
            for r, row in enumerate(view["mean"])
            for c, m in enumerate(row)
        )
    )
    assert abs(top[1] - 0.7) < 0.3 and abs(top[2] - 0.2) < 0.3, top

    ranked = server.api("GET", f"/sweeps/{adaptive}/insights").json()["importance"]
    assert sorted(e["parameter"] for e in ranked) == ["x", "y"] and ranked[0]["method"] == "surrogate"

    bad = server.api("GET", f"/sweeps/{adaptive}/posterior?x=delay")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "x"
    assert "x, y" in bad.json()["error"]["fix"]
