"""A sweep submitted over HTTP runs only code from inside the project roots (issue 24, item 1),
and its relative project paths find the examples' projects (issue 20)."""

from __future__ import annotations

import stat
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.web.conftest import Server
from tests.web.test_security import nothing_written

REPO = Path(__file__).resolve().parents[2]
MARKER_CODE = "import os, pathlib; pathlib.Path(os.environ['MARKER']).write_text('ran')\n"


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def layout(workdir: Path) -> dict[str, Path]:
    """A root with a project folder, and beside it (outside the root) code and a secret."""
    root, outside = workdir / "root", workdir / "outside"
    project = root / "proj"
    project.mkdir(parents=True)
    outside.mkdir()
    marker = workdir / "marker"
    (project / "proj.py").write_text(
        "from os import system\n\n\ndef run(x, command='', path_name=''):\n    return {'y': x}\n"
    )
    # a decorated entry: its signature cannot be read from the source, so the old check imported it
    (project / "side.py").write_text(
        MARKER_CODE + "\n\ndef deco(f):\n    return f\n\n\n@deco\ndef run(x):\n    return {'y': x}\n"
    )
    _executable(project / "python", f'#!/bin/sh\necho ran > {marker}\nexec python3 "$@"\n')
    _executable(outside / "python", f'#!/bin/sh\necho ran > {marker}\nexec python3 "$@"\n')
    (outside / "evil.py").write_text(MARKER_CODE)
    (outside / "requirements.txt").write_text("SECRET-FIRST-LINE\n")
    return {"root": root, "project": project, "outside": outside, "marker": marker}


def _body(**project: Any) -> dict[str, Any]:
    parameters: dict[str, Any] = {"x": [1, 2]}
    for name in ("command", "path_name"):
        if name in project.get("fixed", {}):
            parameters[name] = [project["fixed"].pop(name)]
    entry = {"name": "p", "path": "proj", "entry": "proj:run", **project}
    return {"name": "escape", "projects": [entry], "parameters": parameters, "adaptive_sampling": False}


ESCAPES = {
    "python-absolute": ({"python": "{outside}/python"}, "projects[0].python"),
    "python-relative": ({"python": "../../outside/python"}, "projects[0].python"),
    "stdlib-entry": ({"entry": "os:system", "fixed": {"command": "touch {marker}"}}, "projects[0].entry"),
    "runpy": ({"entry": "runpy:run_path", "fixed": {"path_name": "{outside}/evil.py"}}, "projects[0].entry"),
    "imported-stdlib-name": (
        {"entry": "proj:system", "fixed": {"command": "touch {marker}"}},
        "projects[0].entry",
    ),
    "command-outside": ({"entry": "python {outside}/evil.py --x {x}"}, "projects[0].entry"),
    "shell-c": ({"entry": "sh -c 'touch {marker}' {x}"}, "projects[0].entry"),
    "python-c": ({"entry": "python -c 'print(1)' {x}"}, "projects[0].entry"),
    "shell-true": ({"entry": "python proj.py {x}", "command": {"shell": True}}, "projects[0].command.shell"),
    "requirements-outside": ({"requirements": "../../outside/requirements.txt"}, "projects[0].requirements"),
    "output-file-outside": (
        {"entry": "python proj.py {x}", "command": {"output_file": "{outside}/requirements.txt"}},
        "projects[0].command.output_file",
    ),
}


def _fill(value: Any, paths: dict[str, Path]) -> Any:
    if isinstance(value, str):
        return value.replace("{outside}", str(paths["outside"])).replace("{marker}", str(paths["marker"]))
    if isinstance(value, dict):
        return {k: _fill(v, paths) for k, v in value.items()}
    return value


def test_code_outside_the_roots_is_forbidden_and_nothing_runs(
    start_server, start_worker, redis_url, workdir, layout
) -> None:
    start_worker("w1")
    server: Server = start_server(
        "--broker",
        redis_url,
        "--coordinate",
        ORCHESTRATOR_PROJECT_ROOTS=str(layout["root"]),
        MARKER=str(layout["marker"]),
    )
    for name, (project, field) in ESCAPES.items():
        for query in ("?dry_run=true", ""):
            res = server.api("POST", f"/sweeps{query}", json=_body(**_fill(project, layout)))
            assert res.status_code == 403, (name, res.text)
            error = res.json()["error"]
            assert error["code"] == "forbidden" and error["field"] == field and error["fix"], (name, error)
            assert "SECRET" not in res.text and str(workdir) not in res.text, (name, res.text)
    time.sleep(2)  # what was accepted would have run by now
    assert not layout["marker"].exists()
    nothing_written(redis_url, workdir)


def test_nothing_of_the_project_runs_during_a_dry_run(start_server, redis_url, workdir, layout) -> None:
    server: Server = start_server(
        "--broker", redis_url, ORCHESTRATOR_PROJECT_ROOTS=str(layout["root"]), MARKER=str(layout["marker"])
    )
    for project in ({"python": "python"}, {"entry": "side:run"}):  # its interpreter; its import
        res = server.api("POST", "/sweeps?dry_run=true", json=_body(**project))
        assert res.status_code == 200, res.text
        assert not layout["marker"].exists(), project


def test_the_cli_keeps_its_freedom(workdir, layout, redis_url) -> None:
    from tests.conftest import cli

    sweep = _body(entry="python {outside}/evil.py {x}".replace("{outside}", str(layout["outside"])))
    sweep["projects"][0]["path"] = str(layout["project"])
    path = workdir / "free.yaml"
    path.write_text(yaml.safe_dump(sweep))
    done = cli("estimate", str(path), workdir=workdir)
    assert done.returncode == 0, done.stderr


def test_every_example_sweep_submits_over_http_unchanged(start_server, redis_url) -> None:
    server: Server = start_server("--broker", redis_url, ORCHESTRATOR_PROJECT_ROOTS=str(REPO))
    for path in sorted((REPO / "examples" / "sweeps").glob("*.yaml")):
        res = server.api(
            "POST",
            "/sweeps?dry_run=true",
            data=path.read_bytes(),
            headers={"Content-Type": "application/x-yaml"},
        )
        assert res.status_code == 200, (path.name, res.text)


def test_a_missing_project_names_the_path_relative_to_the_roots(
    start_server, redis_url, workdir, layout
) -> None:
    server: Server = start_server("--broker", redis_url, ORCHESTRATOR_PROJECT_ROOTS=str(layout["root"]))
    res = server.api("POST", "/sweeps?dry_run=true", json=_body(path="../nowhere"))
    assert res.status_code == 422, res.text
    error = res.json()["error"]
    assert error["field"] == "projects[0].path" and error["fix"] and "nowhere" in error["message"]
    assert str(workdir) not in res.text
