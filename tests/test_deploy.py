"""docker-compose.yml (no Docker engine here): valid structure, and every service's command is
one the CLI accepts, so what compose starts can be started without Docker too."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from orchestrator.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_compose_services_map_to_cli_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "worker-cpu", "worker-braket", "coordinator", "beat", "flower", "serve"} <= set(services)
    for name, service in services.items():
        if name == "redis":
            assert "--appendonly" in service["command"]
            continue
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (ROOT / service["build"]["dockerfile"]).is_file()
        command = service["command"]
        assert command[0] == "orchestrator"
        help_run = CliRunner().invoke(main, [command[1], "--help"])
        assert help_run.exit_code == 0, (name, help_run.output)
        # every option used in compose exists on that command
        for arg in command[2:]:
            if arg.startswith("--"):
                assert arg in help_run.output, (name, arg)
    ports = [p for s in services.values() for p in s.get("ports", [])]
    assert all(p.startswith("127.0.0.1:") for p in ports), "published ports bind to localhost only"


def test_every_cli_command_has_help() -> None:
    for command in [
        "run",
        "submit",
        "status",
        "pause",
        "resume",
        "cancel",
        "worker",
        "coordinator",
        "results",
        "check",
        "beat",
        "flower",
        "redis",
        "estimate",
        "serve",
    ]:
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, command
