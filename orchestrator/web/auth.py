"""The API's token: a bearer token, compared in constant time.

A sweep runs code on every worker, so an unguarded submit endpoint is remote code execution:
every state-changing call needs the token, and a submitted sweep may run only code inside the
configured project roots (:mod:`orchestrator.roots`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import Request

from core.errors import OrchestratorError

TOKEN_FILE = "api-token"


class ApiRefusal(OrchestratorError):
    """A request the API refuses: its HTTP status and a message safe to show the caller."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        field: str | None = None,
        fix: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.field = status, message, code, field
        self.fix, self.headers = fix, headers


def load_or_create_token(state_dir: Path) -> tuple[str, Path]:
    """The token stored in ``state_dir``, or a new one written there readable by its owner only."""
    path = Path(state_dir) / TOKEN_FILE
    if path.is_file():
        return path.read_text().strip(), path
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # O_EXCL with mode 0600: the token is never readable by others, not even for an instant
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token, path


def check_token(request: Request) -> None:
    """Raise a 401 unless the request carries ``Authorization: Bearer <the token>``."""
    expected: str = request.app.state.config.token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), expected.encode()):
        raise ApiRefusal(
            401,
            "this call needs `Authorization: Bearer <token>`",
            code="unauthorized",
            fix="send the header with the token: it is in ORCHESTRATOR_API_TOKEN or in the file "
            "`orchestrator serve` printed at start",
        )
