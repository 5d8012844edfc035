"""Secure by default: loopback bind, a token for every state-changing call (every call off
loopback), project roots, body limits, no CORS, and the token never echoed or logged."""

from __future__ import annotations

import stat
from pathlib import Path

import psutil
import pytest
import redis
import requests
import yaml

from tests.conftest import cli
from tests.web.conftest import ROOTS, TOKEN, Server, sweep_body

WRITES = ["/sweeps", "/sweeps/any/pause", "/sweeps/any/resume", "/sweeps/any/cancel"]


def nothing_written(redis_url: str, workdir: Path) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert not list(client.scan_iter("orch:sweep:*")) and not client.smembers("orch:sweeps")
    assert not (workdir / "results").exists()


@pytest.mark.parametrize("token", [None, "wrong-token", TOKEN[:-1]])
def test_every_state_changing_call_needs_the_token(server: Server, redis_url, workdir, token) -> None:
    for path in WRITES:
        res = server.api("POST", path, token=token, data=sweep_body())
        assert res.status_code == 401, (path, res.text)
        assert res.json()["error"]["code"] == "unauthorized"
    nothing_written(redis_url, workdir)
    assert server.api("GET", "/sweeps", token=None).status_code == 200  # loopback: reads are open


def test_the_token_never_appears_in_answers_or_logs(server: Server, start_worker) -> None:
    start_worker("w1")
    answers = [
        server.api("POST", "/sweeps", data=sweep_body(points=3)),
        server.api("POST", "/sweeps", token="wrong", data=sweep_body()),
        server.api("GET", "/sweeps"),
        server.api("GET", "/health"),
        server.api("POST", "/sweeps", data="name: [unclosed"),
        requests.get(f"{server.url}/openapi.json", timeout=10),
    ]
    sweep_id = answers[0].json()["execution_id"]
    answers += [server.api("GET", f"/sweeps/{sweep_id}"), server.api("POST", f"/sweeps/{sweep_id}/cancel")]
    for res in answers:
        assert TOKEN not in res.text and TOKEN not in str(res.headers)
    assert TOKEN not in server.output()
    assert "POST /api/v1/sweeps" in server.output()  # the access log is there, without the token


def test_serve_binds_loopback_by_default_and_generates_a_private_token(
    start_server, redis_url, workdir
) -> None:
    server = start_server("--broker", redis_url, ORCHESTRATOR_API_TOKEN="")
    listening = {
        c.laddr for c in psutil.Process(server.proc.pid).net_connections("inet") if c.status == "LISTEN"
    }
    assert listening == {("127.0.0.1", server.port)}, listening
    token_file = workdir / ".orchestrator" / "api-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    generated = token_file.read_text().strip()
    assert len(generated) >= 32 and generated not in server.output()
    assert str(token_file) in server.output()
    assert server.api("POST", "/sweeps/x/pause", token=None).status_code == 401
    assert server.api("POST", "/sweeps/x/pause", token=generated).status_code == 404  # past the guard


def test_serve_refuses_another_interface_without_a_token(workdir, redis_url) -> None:
    done = cli(
        "serve", "--host", "0.0.0.0", "--broker", redis_url, workdir=workdir, ORCHESTRATOR_API_TOKEN=""
    )
    assert done.returncode == 2, done.stderr
    assert (
        "refusing to serve on 0.0.0.0 without a token" in done.stderr
        and "ORCHESTRATOR_API_TOKEN" in done.stderr
    )
    assert not (workdir / ".orchestrator" / "api-token").exists()


def test_off_loopback_every_call_needs_the_token(start_server, redis_url) -> None:
    server = start_server("--broker", redis_url, "--host", "0.0.0.0")
    for path in ("/sweeps", "/workers", "/sweeps/x/events", "/sweeps/x/results"):
        assert server.api("GET", path, token=None).status_code == 401, path
    assert server.api("GET", "/sweeps").status_code == 200
    assert server.api("GET", "/health", token=None).json()["status"] == "ok"  # probes need no token


@pytest.mark.parametrize("where", ["../..", "/etc", "escape"])
def test_a_project_outside_the_roots_is_forbidden_and_nothing_is_written(
    start_server, redis_url, workdir, where
) -> None:
    root = workdir / "root"
    root.mkdir()
    (root / "escape").symlink_to(ROOTS / "counter")  # inside by name, outside once resolved
    server = start_server("--broker", redis_url, ORCHESTRATOR_PROJECT_ROOTS=str(root))
    body = yaml.safe_load(sweep_body())
    body["projects"][0]["path"] = where
    res = server.api("POST", "/sweeps", json=body)
    assert res.status_code == 403, res.text
    error = res.json()["error"]
    assert error["code"] == "forbidden" and error["field"] == "projects[0].path" and error["fix"]
    # the resolved path is named relative to the roots, never as the server's absolute path
    assert "resolves to .." in error["message"]
    assert str(ROOTS) not in res.text and str(workdir) not in res.text
    nothing_written(redis_url, workdir)


def _cli_error(workdir: Path, text: str, redis_url: str) -> str:
    path = workdir / "bad.yaml"
    path.write_text(text)
    done = cli("run", str(path), "--broker", redis_url, workdir=workdir)
    assert done.returncode == 2
    return " ".join(done.stderr.split())


@pytest.mark.parametrize(
    "text",
    [
        "name: bad\nprojects: [unclosed\n",
        sweep_body() + "bogus_key: 1\n",
        sweep_body().replace("x:", "sleep:", 1),
    ],
    ids=["malformed-yaml", "unknown-key", "repeated-key"],
)
def test_bad_input_gets_422_with_the_clis_message_and_nothing_is_written(
    server: Server, redis_url, workdir, text
) -> None:
    res = server.api("POST", "/sweeps", data=text, headers={"Content-Type": "application/x-yaml"})
    assert res.status_code == 422, res.text
    error = res.json()["error"]
    assert error["code"] == "invalid_input" and error["source"] == "<request body>"
    nothing_written(redis_url, workdir)
    from_cli = _cli_error(workdir, text, redis_url)
    api_text = " ".join(error["message"].replace("<request body>", str(workdir / "bad.yaml")).split())
    assert api_text in from_cli, (api_text, from_cli)
    if "bogus" in text:
        assert error["field"] == "bogus_key"


def test_oversized_bodies_get_413_declared_or_chunked(start_server, redis_url, workdir) -> None:
    server = start_server("--broker", redis_url, ORCHESTRATOR_API_MAX_BODY="4096")
    big = sweep_body() + "#" * 5000 + "\n"
    assert server.api("POST", "/sweeps", data=big).status_code == 413
    chunked = server.api(
        "POST", "/sweeps", data=(big[i : i + 1000].encode() for i in range(0, len(big), 1000))
    )
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "too_large"
    nothing_written(redis_url, workdir)
    assert server.api("POST", "/sweeps", data=sweep_body()).status_code == 201


def test_cors_is_off_unless_configured(server: Server, start_server, redis_url) -> None:
    origin = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    preflight = requests.options(f"{server.url}/api/v1/sweeps", headers=origin, timeout=10)
    assert "access-control-allow-origin" not in {k.lower() for k in preflight.headers}
    get = server.api("GET", "/sweeps", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in {k.lower() for k in get.headers}
    allowed = start_server("--broker", redis_url, ORCHESTRATOR_API_CORS_ORIGINS="https://lab.example")
    ok = requests.options(
        f"{allowed.url}/api/v1/sweeps",
        headers={**origin, "Origin": "https://lab.example"},
        timeout=10,
    )
    assert ok.headers.get("access-control-allow-origin") == "https://lab.example"
