"""The REST API end to end: a real ``orchestrator serve``, real workers, the suite's real Redis."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pandas as pd
import requests

from core.results import ResultStore
from tests.web.conftest import Server, sweep_body


def read_events(server: Server, sweep_id: str, last_id: str | None = None, stop_after: int | None = None):
    """(id, event, data) of the SSE stream until ``finished`` (or ``stop_after`` events)."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    out: list[tuple[str | None, str, Any]] = []
    with server.api("GET", f"/sweeps/{sweep_id}/events", headers=headers, stream=True) as res:
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        for line in res.iter_lines(decode_unicode=True):
            if line == "":
                if "data" in event:
                    out.append((event.get("id"), event.get("event", "message"), json.loads(event["data"])))
                    if out[-1][1] == "finished" or (stop_after and len(out) >= stop_after):
                        return out
                event = {}
                continue
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")
    return out


def test_submit_follow_events_to_finished_and_read_csv_and_parquet(
    server: Server, start_worker, workdir
) -> None:
    start_worker("w1", concurrency=2)
    res = server.api(
        "POST", "/sweeps", data=sweep_body(points=12), headers={"Content-Type": "application/x-yaml"}
    )
    assert res.status_code == 201, res.text
    sweep_id = res.json()["execution_id"]
    assert "results_path" not in res.json()  # no server paths in answers

    events = read_events(server, sweep_id)
    kinds = [kind for _, kind, _ in events]
    assert kinds[-1] == "finished" and "progress" in kinds, kinds
    final = events[-1][2]
    assert final["state"] == "completed" and final["finished"] == 12
    finished_counts = [data["finished"] for _, kind, data in events if kind == "progress"]
    assert finished_counts == sorted(finished_counts)

    # resumable: after the last stored event id, the stream replays nothing old
    ids = [int(i) for i, _, _ in events if i is not None]
    assert ids == sorted(ids) and ids, events
    again = read_events(server, sweep_id, last_id=str(ids[-1]))
    assert [kind for _, kind, _ in again] == ["progress", "finished"]
    replay = read_events(server, sweep_id, last_id=str(ids[0]))
    assert [int(i) for i, _, _ in replay if i is not None] == ids[1:]

    dataset = ResultStore(workdir / "results").load(sweep_id)
    key = ["experiment_id", "status"]
    csv = server.api("GET", f"/sweeps/{sweep_id}/results", params={"format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    from_csv = pd.read_csv(io.StringIO(csv.text))
    parquet = server.api("GET", f"/sweeps/{sweep_id}/results", params={"format": "parquet"})
    from_parquet = pd.read_parquet(io.BytesIO(parquet.content))
    as_json = server.api("GET", f"/sweeps/{sweep_id}/results").json()
    expected = dataset.sort_values("experiment_id")
    for frame in (from_csv, from_parquet, pd.DataFrame(as_json)):
        assert len(frame) == len(dataset) == 12
        got = frame.sort_values("experiment_id")
        assert got[key].values.tolist() == expected[key].values.tolist()
        assert got["metric.y"].astype(float).tolist() == expected["metric.y"].astype(float).tolist()
        assert got["param.x"].astype(int).tolist() == expected["param.x"].astype(int).tolist()
    page = server.api("GET", f"/sweeps/{sweep_id}/results", params={"limit": 5, "offset": 10}).json()
    assert len(page) == 2

    report = server.api("GET", f"/sweeps/{sweep_id}/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert sweep_id in report.text

    listed = server.api("GET", "/sweeps").json()
    assert [s["execution_id"] for s in listed] == [sweep_id] and listed[0]["finished"] == 12
    status = server.api("GET", f"/sweeps/{sweep_id}").json()
    assert status["counts"]["completed"] == 12 and status["failures"] == []
    workers = server.api("GET", "/workers").json()
    assert [w["hostname"].split("@")[0] for w in workers] == ["w1"] and "local_cpu" in workers[0]["queues"]


def test_pause_resume_and_cancel(server: Server, start_worker) -> None:
    start_worker("w1", concurrency=1)
    sweep_id = server.api("POST", "/sweeps", data=sweep_body("slow", points=40, sleep=0.2)).json()[
        "execution_id"
    ]
    paused = server.api("POST", f"/sweeps/{sweep_id}/pause")
    assert paused.status_code == 200 and paused.json()["changed"] and paused.json()["state"] == "paused"
    time.sleep(2)  # what was in flight drains, nothing new starts
    before = server.api("GET", f"/sweeps/{sweep_id}").json()["finished"]
    time.sleep(2)
    assert server.api("GET", f"/sweeps/{sweep_id}").json()["finished"] == before < 40
    resumed = server.api("POST", f"/sweeps/{sweep_id}/resume").json()
    assert resumed["changed"] and resumed["state"] == "running"
    deadline = time.monotonic() + 30
    while server.api("GET", f"/sweeps/{sweep_id}").json()["finished"] == before:
        assert time.monotonic() < deadline, "no progress after resume"
        time.sleep(0.3)
    cancelled = server.api("POST", f"/sweeps/{sweep_id}/cancel").json()
    assert cancelled["changed"]
    final = read_events(server, sweep_id)[-1]
    assert final[1] == "finished" and final[2]["state"] == "cancelled" and final[2]["finished"] <= 40


def test_dry_run_plans_and_estimates_without_writing(server: Server, workdir) -> None:
    res = server.api("POST", "/sweeps", params={"dry_run": "true"}, data=sweep_body(points=6))
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["planned"] == 6 and body["estimate"]["total"] == 0
    assert server.api("GET", "/sweeps").json() == []
    assert not (workdir / "results").exists()


def test_unknown_ids_get_404_and_the_report_says_why(server: Server) -> None:
    for path in ("/sweeps/nope", "/sweeps/nope/events", "/sweeps/nope/results", "/sweeps/nope/report"):
        res = server.api("GET", path)
        assert res.status_code == 404, path
        assert set(res.json()["error"]) >= {"status", "code", "message"}
    assert server.api("POST", "/sweeps/nope/pause").status_code == 404


def test_openapi_docs_and_health(server: Server) -> None:
    spec = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    assert "/api/v1/sweeps/{sweep_id}/events" in spec["paths"]
    assert requests.get(f"{server.url}/docs", timeout=10).status_code == 200
    assert server.api("GET", "/health", token=None).json() == {"status": "ok", "broker": True}
