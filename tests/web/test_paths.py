"""No server path outside the roots in anything readable over HTTP (issue 24, item 6): a sweep
whose runs raise from site-packages, inline and in a subprocess, names the failing files
relative to their package or project, in its rows, status, events and export."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.web.conftest import Server, wait_done

PROJECT = """
import yaml


def run(x):
    return yaml.safe_load("[" * int(x))  # raises in the yaml package
"""


def test_no_server_path_in_any_answer_of_a_failing_sweep(
    start_server, start_worker, redis_url, workdir
) -> None:
    root = workdir / "root"
    (root / "bad").mkdir(parents=True)
    (root / "bad" / "bad.py").write_text(PROJECT)
    server: Server = start_server("--broker", redis_url, "--coordinate", ORCHESTRATOR_PROJECT_ROOTS=str(root))
    start_worker("w1")
    body = {
        "name": "raises",
        "projects": [
            {"name": "inline", "path": "bad", "entry": "bad:run"},
            {"name": "child", "path": "bad", "entry": "bad:run", "isolation": "subprocess"},
        ],
        "parameters": {"x": [1, 2]},
        "adaptive_sampling": False,
    }
    res = server.api("POST", "/sweeps", json=body)
    assert res.status_code == 201, res.text
    sweep_id = res.json()["execution_id"]
    wait_done(server, sweep_id)
    answers = {
        "status": server.api("GET", f"/sweeps/{sweep_id}").text,
        "rows": server.api("GET", f"/sweeps/{sweep_id}/results").text,
        "csv": server.api("GET", f"/sweeps/{sweep_id}/results?format=csv").text,
        "events": server.api("GET", f"/sweeps/{sweep_id}/events").text,
        "list": server.api("GET", "/sweeps").text,
    }
    assert "yaml/parser.py" in answers["rows"]  # the traceback still says where it failed
    assert "bad.py" in answers["rows"]
    forbidden = [
        "site-packages",
        sys.prefix,
        sys.base_prefix,
        str(workdir),
        str(Path.home()),
        "/usr/lib/python",
    ]
    for name, text in answers.items():
        for path in forbidden:
            assert path not in text, (name, path, text[text.find(path) - 150 : text.find(path) + 100])
