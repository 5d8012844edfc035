"""The API's guards: a bearer token (compared in constant time) and the project roots.

A sweep runs code on every worker, so an unguarded submit endpoint is remote code execution:
every state-changing call needs the token, and a submitted sweep may name only projects inside
the configured roots (after symlinks and ``..`` are resolved).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from fastapi import Request

from core.errors import OrchestratorError

TOKEN_FILE = "api-token"


class ApiRefusal(OrchestratorError):
    """A request the API refuses: its HTTP status and a message safe to show the caller."""

    def __init__(self, status: int, message: str, *, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.field = status, message, code, field


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
            "this call needs `Authorization: Bearer <token>`: the token is in ORCHESTRATOR_API_TOKEN "
            "or in the file `orchestrator serve` printed at start",
            code="unauthorized",
        )


def check_project_roots(data: Any, roots: list[Path]) -> None:
    """Raise a 403 if a project of the sweep ``data`` lies outside every root.

    Relative paths are taken from the first root. The message names the project by its
    position only: the resolved path would disclose the server's folders.
    """
    projects = data.get("projects") if isinstance(data, dict) else None
    if not isinstance(projects, list):
        return
    resolved_roots = [root.resolve() for root in roots]
    for i, project in enumerate(projects):
        if not isinstance(project, dict) or "path" not in project:
            continue
        folder = (resolved_roots[0] / str(project["path"])).resolve()
        if not any(folder.is_relative_to(root) for root in resolved_roots):
            raise ApiRefusal(
                403,
                f"projects[{i}].path is outside the project roots this server accepts; put the "
                f"project under one of them (ORCHESTRATOR_PROJECT_ROOTS) or give a path relative to it",
                code="forbidden",
                field=f"projects[{i}].path",
            )
