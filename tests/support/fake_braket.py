"""A local fake Amazon Braket service that the real SDK talks to over HTTP.

Point the SDK at it with ``AWS_ENDPOINT_URL_BRAKET=http://127.0.0.1:PORT`` (plus fake
credentials, a region, and ``AWS_ENDPOINT_URL_S3`` at a moto server for results)::

    python -m tests.support.fake_braket --port 8787 --s3-endpoint http://127.0.0.1:5000

Braket routes: ``POST /quantum-task`` (201, honours ``clientToken``), ``GET /quantum-task/{arn}``,
``PUT /quantum-task/{arn}/cancel``, ``GET /device/{arn}``, ``POST /devices``.
Admin routes (tests, demos): ``GET /_fake/stats``, ``POST /_fake/faults`` (JSON of
:class:`~tests.support.fake_braket_state.Faults` fields), ``POST /_fake/devices/{arn or name}``
(``status``, ``windows``, ``extra_queue``, ``queue_delay``), ``POST /_fake/reset``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.support.fake_braket_state import ApiError, FakeBraket, Faults

__all__ = ["FakeBraket", "FakeBraketAdmin", "FakeBraketServer", "Faults"]

_CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d+/([^/]+)/braket/")
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/quantum-task$"), "CreateQuantumTask"),
    ("PUT", re.compile(r"^/quantum-task/(?P<arn>.+)/cancel$"), "CancelQuantumTask"),
    ("GET", re.compile(r"^/quantum-task/(?P<arn>.+)$"), "GetQuantumTask"),
    ("GET", re.compile(r"^/device/(?P<arn>.+)$"), "GetDevice"),
    ("POST", re.compile(r"^/devices$"), "SearchDevices"),
    ("GET", re.compile(r"^/_fake/stats$"), "admin:stats"),
    ("POST", re.compile(r"^/_fake/faults$"), "admin:faults"),
    ("POST", re.compile(r"^/_fake/devices/(?P<arn>.+)$"), "admin:device"),
    ("POST", re.compile(r"^/_fake/reset$"), "admin:reset"),
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: botocore pools connections
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence per-request logging; counters are in /_fake/stats."""

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
            for verb, pattern, operation in _ROUTES:
                match = pattern.match(url.path)
                if verb == method and match:
                    arn = unquote(match.groupdict().get("arn") or "")
                    status, payload = self._call(operation, arn, body, parse_qs(url.query))
                    return self._send(status, payload)
            self._send(404, {"message": f"no route {method} {url.path}"}, code="UnknownOperationException")
        except ApiError as exc:
            self._send(exc.status, {"message": exc.message}, code=exc.code)
        except Exception as exc:  # noqa: BLE001 - a fake's bug must surface as a 500, not a hung client
            self._send(500, {"message": f"fake service bug: {exc!r}"}, code="InternalServiceException")

    def _call(
        self, operation: str, arn: str, body: dict[str, Any], query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        fake = self.server.fake
        if operation.startswith("admin:"):
            return 200, _admin(fake, operation, arn, body)
        fake.before_call(operation)
        if operation == "CreateQuantumTask":
            match = _CREDENTIAL_REGION.search(self.headers.get("Authorization", ""))
            return 201, {"quantumTaskArn": fake.create_task(body, match.group(1) if match else None)}
        if operation == "GetQuantumTask":
            return 200, fake.get_task(arn, "QueueInfo" in query.get("additionalAttributeNames", []))
        if operation == "CancelQuantumTask":
            return 200, {"quantumTaskArn": arn, "cancellationStatus": fake.cancel_task(arn)}
        if operation == "GetDevice":
            return 200, fake.get_device(arn)
        return 200, fake.search_devices(body)

    def _send(self, status: int, payload: dict[str, Any], code: str | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if code:
            self.send_header("x-amzn-ErrorType", code)
        self.end_headers()
        self.wfile.write(data)


def _admin(fake: FakeBraket, operation: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    if operation == "admin:stats":
        return fake.stats()
    if operation == "admin:faults":
        return fake.configure(**body)
    if operation == "admin:device":
        return fake.set_device(key, **body)
    fake.reset()
    return {"reset": True}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeBraket

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-request (a SIGKILLed worker, as the fault benchmarks do) is expected:
        no traceback on stderr for it, which would read as a bug of the fake."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeBraketServer:
    """The fake service on a port (0: a free one), served from a background thread.

    Args:
        host: interface to bind.
        port: TCP port; 0 picks a free one (read it back from :attr:`url`).
        s3_endpoint: moto server URL results go to (default ``$AWS_ENDPOINT_URL_S3``).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, s3_endpoint: str | None = None) -> None:
        self.fake = FakeBraket(s3_endpoint=s3_endpoint)
        self._httpd = _Server((host, port), _Handler)
        self._httpd.fake = self.fake
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeBraketServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fake-braket-http", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self.fake.close()
        if self._thread:
            self._thread.join(timeout=5)


class FakeBraketAdmin:
    """Drive a fake service in another process (or this one) through its admin routes.

    Args:
        url: the service's base URL (``AWS_ENDPOINT_URL_BRAKET``).
    """

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _post(self, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(payload or {}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        """Counters: ``created_total``, ``created_per_token``, ``requests``, ``errors``, ``tasks``."""
        with urllib.request.urlopen(f"{self.url}/_fake/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def faults(self, **changes: Any) -> dict[str, Any]:
        """Change fault injection (see :class:`Faults`)."""
        return self._post("/_fake/faults", changes)

    def device(self, key: str, **changes: Any) -> dict[str, Any]:
        """Change a device's ``status``, ``windows``, ``extra_queue`` or ``queue_delay``."""
        return self._post(f"/_fake/devices/{quote(key, safe='')}", changes)

    def reset(self) -> None:
        """Forget all tasks and counters; default devices and no faults."""
        self._post("/_fake/reset")


def main(argv: list[str] | None = None) -> None:
    """Run the fake service in the foreground."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--s3-endpoint", default=None, help="moto server URL (default: $AWS_ENDPOINT_URL_S3)")
    parser.add_argument("--faults", default="{}", help="JSON of fault settings, e.g. '{\"create_rate\": 20}'")
    args = parser.parse_args(argv)
    server = FakeBraketServer(host=args.host, port=args.port, s3_endpoint=args.s3_endpoint)
    server.fake.configure(**json.loads(args.faults))
    print(f"fake Braket listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
