"""A real HTTP server standing in for a customer's webhook receiver.

It binds 127.0.0.1 on an ephemeral port, records every request (method, path,
headers, body bytes, arrival time) and answers from a script of
``(status, headers, delay)`` responses, 200 once the script runs out::

    receiver.respond(503, {"Retry-After": "1"})   # the next request gets a 503
    receiver.respond(200, delay=2.0)               # the one after waits 2 s, then 200
    requests = receiver.wait_for(2, timeout=5)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import wait_until


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes
    received_at: datetime
    received_monotonic: float
    client_port: int = 0
    """The sender's source port: requests on one kept-alive connection share it."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class ScriptedResponse:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        receiver = self.server.receiver
        receiver._record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                received_at=datetime.now(UTC),
                received_monotonic=time.monotonic(),
                client_port=int(self.client_address[1]),
            )
        )
        scripted = receiver._next_response()
        if scripted.delay and receiver._stopping.wait(scripted.delay):
            return  # shutting down: drop the connection without answering
        try:
            self.send_response(scripted.status)
            for name, value in scripted.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(scripted.body)))
            if not receiver.keep_alive:
                self.send_header("Connection", "close")
            self.end_headers()
            if scripted.body:
                self.wfile.write(scripted.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout under test)
            return
        self.close_connection = not receiver.keep_alive

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 that records requests and plays scripted responses."""

    def __init__(self, path: str = "/webhook", *, keep_alive: bool = False) -> None:
        self.path = path
        self.keep_alive = keep_alive
        """Answer HTTP/1.1 keep-alive, so the sender may reuse its connection."""
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._script: deque[ScriptedResponse] = deque()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the receiver first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def url_for(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # --- scripting ---------------------------------------------------------------------
    def respond(
        self, status: int = 200, headers: dict[str, str] | None = None, delay: float = 0.0, body: bytes = b""
    ) -> None:
        """Queue the answer to the next unanswered request."""
        with self._lock:
            self._script.append(ScriptedResponse(status, dict(headers or {}), delay, body))

    def script(self, responses: list[tuple[int, dict[str, str] | None, float]]) -> None:
        """Queue several ``(status, headers, delay)`` answers, in order."""
        for status, headers, delay in responses:
            self.respond(status, headers, delay)

    def _next_response(self) -> ScriptedResponse:
        with self._lock:
            return self._script.popleft() if self._script else ScriptedResponse()

    # --- observations ------------------------------------------------------------------
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Poll until at least ``n`` requests arrived; return them all. Fails after ``timeout`` seconds."""

        def arrived() -> list[RecordedRequest]:
            got = self.requests
            return got if len(got) >= n else []

        return wait_until(
            arrived,
            timeout,
            lambda: f"expected {n} webhook request(s) within {timeout}s, got {len(self.requests)}",
            interval=0.01,
        )
