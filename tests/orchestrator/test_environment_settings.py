"""A mistyped ``ORCHESTRATOR_*`` variable: one-shot commands refuse it (exit 2, the closest
setting named, nothing written); long-running services start but warn loudly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from core import settings as settings_module
from core.errors import InputError
from core.settings import NON_SETTING_ENV, Settings, check_environment, load_settings, unknown_env
from tests.conftest import ROOT, Worker, cli, write_sweep

TYPO = {"ORCHESTRATOR_VISIBILTY_TIMEOUT": "5"}


def test_unknown_names_get_the_closest_setting() -> None:
    found = unknown_env(
        {
            "ORCHESTRATOR_VISIBILTY_TIMEOUT": "5",
            "orchestrator_lease_tt": "3",  # matched case-insensitively, as pydantic-settings does
            "ORCHESTRATOR_QWERTY": "1",
            "ORCHESTRATOR_BROKER_URL": "redis://x",
            "ORCHESTRATOR_SETTINGS_FILE": "s.yaml",
            "ORCHESTRATOR_SEED": "7",
            "PATH": "/bin",
        }
    )
    assert found == {
        "ORCHESTRATOR_VISIBILTY_TIMEOUT": "ORCHESTRATOR_VISIBILITY_TIMEOUT",
        "orchestrator_lease_tt": "ORCHESTRATOR_LEASE_TTL",
        "ORCHESTRATOR_QWERTY": None,
    }


def test_every_setting_and_allowed_name_passes() -> None:
    names = {f"ORCHESTRATOR_{field.upper()}": "1" for field in Settings.model_fields}
    names.update(dict.fromkeys(NON_SETTING_ENV, "1"))
    check_environment(strict=True, environ=names)


def test_no_match_lists_the_settings() -> None:
    with pytest.raises(InputError) as raised:
        check_environment(strict=True, environ={"ORCHESTRATOR_QWERTY": "1"})
    assert "ORCHESTRATOR_QWERTY" in str(raised.value) and "ORCHESTRATOR_LEASE_TTL" in str(raised.value)


def test_every_orchestrator_name_in_the_repository_is_known() -> None:
    """The allow-list keeps up: a variable read or documented anywhere is a setting or allowed."""
    pattern = re.compile(r"\bORCHESTRATOR_[A-Z0-9_]*[A-Z0-9]\b")
    sources = [
        *ROOT.glob("*.md"),
        ROOT / "docker-compose.yml",
        ROOT / "Makefile",
        ROOT / "deploy" / "Dockerfile",
        *[
            p
            for d in ("orchestrator", "workers", "adapters", "analysis", "tests", "examples", "benchmarks")
            for p in (ROOT / d).rglob("*")
            if p.suffix in {".py", ".md", ".yaml", ".yml", ".sh"}
        ],
    ]
    named = {
        m for path in sources if path.is_file() for m in pattern.findall(path.read_text(errors="ignore"))
    }
    named.discard("ORCHESTRATOR_QWERTY")  # this file's own example of a typo
    named -= set(TYPO)
    assert unknown_env(dict.fromkeys(named, "1")) == {}


def test_python_api_warns_once_per_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(settings_module, "_warned", set())
    monkeypatch.setenv("ORCHESTRATOR_VISIBILTY_TIMEOUT", "5")
    for _ in range(3):
        assert load_settings().visibility_timeout == 1800  # the typo has no effect...
    warnings = [r.getMessage() for r in caplog.records if "UNKNOWN SETTING IGNORED" in r.getMessage()]
    assert len(warnings) == 1 and "ORCHESTRATOR_VISIBILITY_TIMEOUT" in warnings[0]  # ...but is told


@pytest.mark.parametrize("command", ["run", "submit"])
def test_one_shot_commands_refuse_a_typo(command: str, workdir: Path, redis_url: str) -> None:
    sweep = write_sweep(workdir, points=3)
    proc = cli(command, str(sweep), "--broker", redis_url, workdir=workdir, **TYPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    assert "ORCHESTRATOR_VISIBILTY_TIMEOUT is not a setting" in message
    assert "did you mean ORCHESTRATOR_VISIBILITY_TIMEOUT?" in message
    assert "Traceback" not in proc.stderr
    assert redis.Redis.from_url(redis_url).dbsize() == 0, "no Redis keys"
    assert not (workdir / "results").exists() and not (workdir / ".orchestrator").exists()


def test_other_one_shot_commands_refuse_a_typo(workdir: Path) -> None:
    for args in (["status"], ["results", "some-id"], ["estimate", str(write_sweep(workdir))]):
        proc = cli(*args, workdir=workdir, **TYPO)
        assert proc.returncode == 2, (args, proc.stdout + proc.stderr)
        assert "ORCHESTRATOR_VISIBILITY_TIMEOUT" in proc.stderr, args


def test_help_still_works_with_a_typo(workdir: Path) -> None:
    proc = cli("run", "--help", workdir=workdir, **TYPO)
    assert proc.returncode == 0 and "Usage" in proc.stdout


def test_worker_starts_but_warns_loudly(workdir: Path, redis_url: str) -> None:
    worker = Worker(redis_url, workdir, "typo", concurrency=1, env=TYPO)
    try:
        worker.wait_ready()
        log = Path(worker.log.name).read_text()
    finally:
        worker.stop()
    assert "UNKNOWN SETTING IGNORED" in log
    assert (
        "ORCHESTRATOR_VISIBILTY_TIMEOUT is not a setting (did you mean ORCHESTRATOR_VISIBILITY_TIMEOUT?)"
        in log
    )
