"""One error shape for every answer that is not a success, whoever raised it.

``{"error": {"status", "code", "message", "field", "fix", ...}}``: our refusals, the CLI's own
:class:`~core.errors.InputError`, FastAPI's request validation, Starlette's 404 and 405, and an
unexpected exception (a 500 that says only that something failed; details go to the server
log). Messages are cut at ``MAX_TEXT`` characters, so no input can make an error body large.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from core.errors import BrokerUnavailable, InputError
from orchestrator.roots import OutsideRoots
from orchestrator.store import STORE_ERRORS
from orchestrator.web.auth import ApiRefusal

log = logging.getLogger(__name__)
MAX_TEXT = 1000
NO_BROKER = "the broker does not answer"
RETRY = "try again shortly; if it persists, check that Redis runs and ORCHESTRATOR_BROKER_URL points at it"
#: the fix for the statuses Starlette raises itself
_FIXES = {
    404: "check the path: GET /api/v1/sweeps lists the sweeps, /docs lists the routes",
    405: "use one of the methods in the Allow header (/docs lists each route's method)",
}


def _cut(text: Any) -> Any:
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return text[:MAX_TEXT] + " [...]"
    return text


def error_body(
    status: int,
    code: str,
    message: str,
    *,
    fix: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The one error shape (``field`` and ``fix`` are always there, ``None`` when not known)."""
    body = {"status": status, "code": code, "message": _cut(message), "field": None, "fix": _cut(fix)}
    body.update({k: _cut(v) for k, v in extra.items()})
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` in the error shape."""

    @app.exception_handler(ApiRefusal)
    async def _refused(request: Request, exc: ApiRefusal) -> JSONResponse:
        return error_body(
            exc.status, exc.code, exc.message, field=exc.field, fix=exc.fix, headers=exc.headers
        )

    @app.exception_handler(BrokerUnavailable)
    async def _no_broker(request: Request, exc: BrokerUnavailable) -> JSONResponse:
        return error_body(503, "broker_unavailable", NO_BROKER, fix=RETRY, headers={"Retry-After": "5"})

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: InputError) -> JSONResponse:
        status, code = (403, "forbidden") if isinstance(exc, OutsideRoots) else (422, "invalid_input")
        return error_body(
            status,
            code,
            str(exc),
            source=exc.source,
            field=exc.field,
            line=exc.line,
            fix=exc.fix or "fix the field named and send the request again",
        )

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return error_body(
            422,
            "invalid_input",
            f"{where}: {first.get('msg')}",
            field=where,
            fix="fix the field named (/docs lists each route's parameters)",
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = (
            f"no such path: {request.url.path}"
            if exc.status_code == 404
            else f"{request.method} {request.url.path}: {exc.detail}"
        )
        return error_body(
            exc.status_code, code, message, fix=_FIXES.get(exc.status_code), headers=dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, STORE_ERRORS):
            return error_body(503, "broker_unavailable", NO_BROKER, fix=RETRY, headers={"Retry-After": "5"})
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_body(
            500,
            "internal",
            "internal error; the server log has the details",
            fix="this is a bug of the server, not of the request: report it with the server log",
        )
