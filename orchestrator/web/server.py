"""``orchestrator serve``: the binding rules, the token, and uvicorn.

Bound to loopback (the default), reads are open and state-changing calls need the token; if
none is configured one is generated into the state folder (mode 0600) and its *path* is printed,
never the token. Bound to any other address every call needs the token, and without a
configured one ``serve`` refuses to start: a generated token nobody was told would lock everyone
out, and none at all would be remote code execution.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import uvicorn

from core.errors import InputError
from core.settings import Settings
from orchestrator.web.app import ApiConfig, create_app
from orchestrator.web.auth import load_or_create_token
from orchestrator.web.hosts import default_hosts

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` reaches only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def api_token(settings: Settings, host: str) -> tuple[str, Path | None]:
    """The configured token, or (on loopback only) the stored or generated one and its file."""
    if settings.api_token is not None and settings.api_token.get_secret_value():
        return settings.api_token.get_secret_value(), None
    if not is_loopback(host):
        raise InputError(
            f"refusing to serve on {host} without a token: every call from the network needs one",
            field="--host",
            fix="set ORCHESTRATOR_API_TOKEN (e.g. `export ORCHESTRATOR_API_TOKEN=$(openssl rand -hex 32)`) "
            "or bind to 127.0.0.1",
        )
    return load_or_create_token(settings.state_dir)


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    coordinate: bool | None = None,
    workers: int | None = None,
    flower_url: str | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Run the API and dashboard until interrupted (coordinating too when embedded, by default)."""
    from orchestrator.api import Orchestrator

    token, token_file = api_token(settings, host)  # before anything starts: a refusal leaves no trace
    roots = settings.project_roots or [Path.cwd()]
    orch = Orchestrator(
        settings=settings,
        coordinate=settings.embedded if coordinate is None else coordinate,
        workers=workers,
    )
    try:
        config = ApiConfig(
            token=token,
            open_reads=is_loopback(host),
            project_roots=[Path(r) for r in roots],
            cors_origins=list(settings.api_cors_origins),
            max_body=settings.api_max_body,
            flower_url=flower_url,
            interpreters=list(settings.api_interpreters),
            commands=list(settings.api_commands),
            allowed_hosts=[*default_hosts(host), *settings.api_allowed_hosts],
        )
        app = create_app(orch, config)
        # A long-lived server streams large exports: Arrow's default pool (mimalloc) keeps freed
        # buffers for a while, so RSS would jump by tens of MB per export; malloc gives them back.
        pa.set_memory_pool(pa.system_memory_pool())
        # The event loop answers cached status and SSE; handlers in threads build pages. With the
        # default 5-ms switch interval a busy handler thread kept the loop waiting for the GIL.
        sys.setswitchinterval(0.001)
        shown = f"[{host}]" if ":" in host else host
        say(f"dashboard and API: http://{shown}:{port}/  (docs: /docs)")
        say(
            "API token: in ORCHESTRATOR_API_TOKEN"
            if token_file is None
            else f"API token: in {token_file} (readable by you only)"
        )
        uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=3)
    finally:
        orch.close()
