"""Inputs that used to stall the server or answer 500 (issue 24, items 3, 7 and 8): every one
answers 4xx in the error shape, fast and small."""

from __future__ import annotations

import time
from pathlib import Path

import requests
import yaml

from tests.conftest import cli
from tests.web.conftest import Server, sweep_body, wait_done
from tests.web.test_security import nothing_written

# 1 KB: nine levels of nine aliases, inside `fixed` where the probe put them (9**9 values expanded)
LEVELS = "abcdefghi"
BOMB = "name: bomb\nprojects:\n  - name: counter\n    path: counter\n    entry: counter:run\n    fixed:\n"
BOMB += '      a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
BOMB += "".join(
    f"      {b}: &{b} [{','.join(['*' + a] * 9)}]\n" for a, b in zip(LEVELS, LEVELS[1:], strict=False)
)
BOMB += "parameters:\n  x: [1, 2]\n"


def shaped(res: requests.Response, status: int) -> dict:
    assert res.status_code == status, res.text
    error = res.json()["error"]
    assert {"status", "code", "message", "field", "fix"} <= set(error) and error["status"] == status
    assert error["fix"], error
    return error


def test_an_alias_bomb_is_refused_fast_and_small(server: Server, redis_url, workdir) -> None:
    assert len(BOMB) <= 1024
    for query in ("?dry_run=true", ""):
        started = time.perf_counter()
        res = server.api("POST", f"/sweeps{query}", data=BOMB, headers={"Content-Type": "application/x-yaml"})
        elapsed = time.perf_counter() - started
        shaped(res, 422)
        assert elapsed < 0.1 and len(res.content) < 2048, (elapsed, len(res.content))
    nothing_written(redis_url, workdir)
    path = workdir / "bomb.yaml"
    path.write_text(BOMB)
    done = cli("run", str(path), "--broker", redis_url, workdir=workdir)
    assert done.returncode == 2 and "expands to more than" in done.stderr, done.stderr
    assert len(done.stderr) < 2048


def test_malformed_inputs_answer_4xx_in_the_error_shape(server: Server, redis_url, workdir) -> None:
    nul = yaml.safe_load(sweep_body())
    nul["projects"][0]["path"] = "counter\x00/../../etc"
    shaped(server.api("POST", "/sweeps", json=nul), 422)
    deep = '{"name": ' + "[" * 50_000 + "]" * 50_000 + "}"
    error = shaped(
        server.api("POST", "/sweeps", data=deep, headers={"Content-Type": "application/json"}), 422
    )
    assert "deeper than" in error["message"]
    nothing_written(redis_url, workdir)
    error = shaped(server.api("DELETE", "/sweeps"), 405)
    assert error["code"] == "method_not_allowed"
    shaped(server.api("GET", "/no/such/route"), 404)
    # a Last-Event-ID that is not UTF-8 (latin-1 superscript digits, which str.isdigit() takes)
    sweep_id = server.api("POST", "/sweeps", data=sweep_body(points=2)).json()["execution_id"]
    with server.api(
        "GET", f"/sweeps/{sweep_id}/events", headers={"Last-Event-ID": b"\xb2\xb3"}, stream=True
    ) as res:
        assert res.status_code == 200, res.text
        assert next(res.iter_content(64))


def test_a_host_the_server_was_not_told_is_refused(server: Server, start_server, redis_url) -> None:
    error = shaped(server.api("GET", "/sweeps", headers={"Host": "attacker.example"}), 400)
    assert error["code"] == "untrusted_host"
    assert server.api("GET", "/health", headers={"Host": "attacker.example:80"}).status_code == 400
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "localhost"):
        assert server.api("GET", "/sweeps", headers={"Host": host}).status_code == 200, host
    allowed = start_server("--broker", redis_url, ORCHESTRATOR_API_ALLOWED_HOSTS="lab.example")
    assert allowed.api("GET", "/sweeps", headers={"Host": "lab.example:8000"}).status_code == 200
    assert allowed.api("GET", "/sweeps", headers={"Host": "attacker.example"}).status_code == 400


def test_the_report_is_written_whatever_the_parameter_names(
    start_server, start_worker, redis_url, workdir: Path
) -> None:
    project = workdir / "root" / "kw"
    project.mkdir(parents=True)
    (project / "kw.py").write_text("def run(params: dict) -> dict:\n    return {'y': float(params['x'])}\n")
    server: Server = start_server(
        "--broker", redis_url, "--coordinate", ORCHESTRATOR_PROJECT_ROOTS=str(project.parent)
    )
    start_worker("w1")
    odd = "$\\undefinedmacro{$"  # matplotlib's mathtext cannot parse it
    body = {
        "name": "odd",
        "projects": [{"name": "kw", "path": "kw", "entry": "kw:run"}],
        "parameters": {"x": [1, 2, 3], odd: [1, 2]},
        "adaptive_sampling": False,
    }
    res = server.api("POST", "/sweeps", json=body)
    assert res.status_code == 201, res.text
    sweep_id = res.json()["execution_id"]
    wait_done(server, sweep_id)
    report = server.api("GET", f"/sweeps/{sweep_id}/report")
    assert report.status_code == 200, report.text[:2000]
    assert "undefinedmacro" in report.text
