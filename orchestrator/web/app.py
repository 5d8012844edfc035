"""The app factory: the API under ``/api/v1``, the dashboard at ``/``, one JSON error shape.

Every error answers ``{"error": {"code", "message", "field", "fix", ...}}``: 401 without the
token, 403 outside the project roots, 404 for an unknown id, 413 for an oversized body, 422 for
bad input (the same :class:`~core.errors.InputError` the CLI prints), 503 when the
broker is unreachable. A 500 says only that something failed: details go to the server log.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from core.errors import BrokerUnavailable, InputError
from orchestrator.store import STORE_ERRORS
from orchestrator.web.auth import ApiRefusal
from orchestrator.web.dashboard import dashboard
from orchestrator.web.docs import install_docs
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
    """

    token: str
    open_reads: bool = True
    project_roots: list[Path] = field(default_factory=list)
    cors_origins: list[str] = field(default_factory=list)
    max_body: int = 1_000_000
    flower_url: str | None = None


def error_body(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"error": {"status": status, "code": code, "message": message, **extra}}, status_code=status
    )


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

    @app.exception_handler(ApiRefusal)
    async def _refused(request: Request, exc: ApiRefusal) -> JSONResponse:
        return error_body(exc.status, exc.code, exc.message, field=exc.field)

    @app.exception_handler(BrokerUnavailable)
    async def _no_broker(request: Request, exc: BrokerUnavailable) -> JSONResponse:
        return error_body(503, "broker_unavailable", "the broker does not answer; try again shortly")

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: InputError) -> JSONResponse:
        detail = exc.to_dict()
        return error_body(
            422, "invalid_input", str(exc), **{k: detail[k] for k in ("source", "field", "line", "fix")}
        )

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return error_body(422, "invalid_input", f"{where}: {first.get('msg')}", field=where)

    @app.exception_handler(404)
    async def _not_found(request: Request, exc: Exception) -> JSONResponse:
        return error_body(404, "not_found", f"no such path: {request.url.path}")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, STORE_ERRORS):
            return error_body(503, "broker_unavailable", "the broker does not answer; try again shortly")
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_body(500, "internal", "internal error; the server log has the details")

    app.mount("/", StaticFiles(directory=STATIC, html=True), name="dashboard")
    return app
