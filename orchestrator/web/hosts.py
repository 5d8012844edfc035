"""Answer only requests addressed to this server by a name it was told: DNS rebinding's defence.

On loopback reads need no token. A page on ``attacker.example`` whose name is made to resolve to
127.0.0.1 would otherwise read this API from the researcher's own browser: its requests carry
``Host: attacker.example``, which is refused here (400, in the error shape). Starlette's
``TrustedHostMiddleware`` does the same, but cuts ``[::1]:8000`` at its first colon and answers
in plain text.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::", "")


def default_hosts(bound: str) -> list[str]:
    """The bound host and localhost; any host when bound to every interface (then every call
    needs the token, which a rebinding page does not have)."""
    if bound in WILDCARDS:
        return ["*"]
    return list(dict.fromkeys([bound, *LOOPBACK_NAMES]))


def host_name(header: str) -> str:
    """``Host`` without its port: ``[::1]:8000`` -> ``::1``, ``lab:8000`` -> ``lab``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


class TrustedHosts:
    """ASGI middleware: a 400 unless the request's ``Host`` is one of ``allowed`` (``*``: any)."""

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.any = "*" in allowed
        self.allowed = {host_name(h) if h.startswith("[") else h.lower() for h in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        if host_name(raw) in self.allowed:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error": {
                    "status": 400,
                    "code": "untrusted_host",
                    "message": "this server does not answer for the Host this request names",
                    "field": "Host",
                    "fix": "address the server by the host it is bound to, or localhost; its operator "
                    "can allow other names with ORCHESTRATOR_API_ALLOWED_HOSTS",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
