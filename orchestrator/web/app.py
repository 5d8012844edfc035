"""The app factory: the API under ``/api/v1``, the dashboard at ``/``, one JSON error shape.

Every error answers ``{"error": {"status", "code", "message", "field", "fix", ...}}``
(:mod:`orchestrator.web.errors`): 400 for a Host this server was not told, 401 without the
token, 403 for code outside the project roots, 404 for an unknown id, 405 for a wrong method,
413 for an oversized body, 422 for bad input (the same :class:`~core.errors.InputError` the CLI
prints), 429 and 503 with ``Retry-After`` when busy or when the broker is unreachable. A 500
says only that something failed: details go to the server log.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from orchestrator.roots import HttpRules
from orchestrator.web import errors
from orchestrator.web.dashboard import dashboard
from orchestrator.web.docs import install_docs
from orchestrator.web.hosts import TrustedHosts, default_hosts
from orchestrator.web.routes import probes, router

if TYPE_CHECKING:
    from orchestrator.api import Orchestrator

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
THREADS = 4 * (os.cpu_count() or 1)  # for blocking handlers (see _lifespan)


@dataclass(frozen=True)
class ApiConfig:
    """How the API guards itself.

    Attributes:
        token: the bearer token every state-changing call (every call, if ``open_reads`` is
            False) must carry.
        open_reads: whether GET calls go without the token (only when bound to loopback).
        project_roots: folders submitted sweeps may take projects from.
        cors_origins: origins CORS allows; none by default.
        max_body: largest request body accepted, in bytes.
        flower_url: where the dashboard links to Flower, if one runs.
        interpreters: ``api_interpreters``; commands: ``api_commands`` (see ``HttpRules``).
        allowed_hosts: the ``Host`` names answered (:mod:`orchestrator.web.hosts`).
    """

    token: str
    open_reads: bool = True
    project_roots: list[Path] = field(default_factory=list)
    cors_origins: list[str] = field(default_factory=list)
    max_body: int = 1_000_000
    flower_url: str | None = None
    interpreters: list[Path] = field(default_factory=list)
    commands: list[str] = field(default_factory=lambda: ["python"])
    allowed_hosts: list[str] = field(default_factory=lambda: default_hosts("127.0.0.1"))

    @property
    def rules(self) -> HttpRules:
        """What a sweep submitted over HTTP may run (:mod:`orchestrator.roots`)."""
        return HttpRules(self.project_roots, self.interpreters, self.commands)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Blocking handlers (Redis, Parquet) run in anyio's thread pool, 40 threads by default. They
    # hold the GIL for most of their time: 40 of them contending for it spent more CPU switching
    # than answering, and status requests waited behind pages. A few threads per core serve more.
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    yield


def create_app(orch: Orchestrator, config: ApiConfig) -> FastAPI:
    """The FastAPI app over ``orch`` (the same service layer as the CLI and the Python API)."""
    app = FastAPI(
        lifespan=_lifespan,
        title="quantum-orchestrator",
        version="1",
        description="Submit sweeps, watch them live, read their results. "
        "State-changing calls need `Authorization: Bearer <token>`.",
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.orch = orch
    app.state.config = config
    app.include_router(router, prefix="/api/v1")
    app.include_router(probes, prefix="/api/v1")
    app.include_router(dashboard, prefix="/api/v1")
    install_docs(app)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )

    errors.install(app)
    app.add_middleware(TrustedHosts, allowed=config.allowed_hosts)
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="dashboard")
    return app
