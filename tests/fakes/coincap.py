"""A real HTTP server that answers like the CoinCap v3 REST API, from fixtures.

It binds 127.0.0.1 on an ephemeral port and serves ``/v3/assets/{slug}`` and
``/v3/assets/{slug}/history?interval=&start=&end=`` with the ``{"data", "timestamp"}``
wrapper, numbers as strings and times in milliseconds, like CoinCap. Assets come from
``tests/fixtures/coincap/asset_<slug>.json``; history series are seeded by the test
(``add_history``/``add_series``) or from ``history_<slug>_<interval>.json``. Failures
are scripted and consumed in order by the next matching requests::

    fake.script(429, headers={"Retry-After": "1"})            # next request: 429
    fake.script(500, times=3)                                 # the next three: 500
    fake.script(200, fixture="maintenance.html", content_type="text/html")
    fake.script(200, delay=2.0)                               # answers after 2 s
    fake.script(200, fixture="retired_v2_message.json", path="/history")

Every request is recorded (path, query, headers, arrival time).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "coincap"
STEP_MS = {"h1": 3_600_000, "d1": 86_400_000}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass(frozen=True)
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


@dataclass
class Scripted:
    status: int = 200
    body: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    path: str | None = None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        fake._record(Recorded(parts.path, query, {k.lower(): v for k, v in self.headers.items()}, time.monotonic()))
        scripted = fake._next_script(parts.path)
        if scripted is not None and scripted.body is None and scripted.status == 200:
            scripted.body = fake._answer(parts.path, query)[1]
        if scripted is None:
            status, body = fake._answer(parts.path, query)
            scripted = Scripted(status=status, body=body)
        if scripted.delay:
            time.sleep(scripted.delay)
        body = scripted.body if scripted.body is not None else b'{"error": "scripted failure"}'
        try:
            self.send_response(scripted.status)
            self.send_header("Content-Type", scripted.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in scripted.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeCoinCap


class FakeCoinCap:
    def __init__(self) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.fake = self
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._script: deque[Scripted] = deque()
        self.series: dict[tuple[str, str], dict[int, str]] = {}
        self.assets: dict[str, Any] = {}
        self.now_ms: int | None = None
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeCoinCap:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v3"

    # -- scripting ------------------------------------------------------------------------

    def script(
        self,
        status: int = 200,
        *,
        body: bytes | str | dict | list | None = None,
        fixture: str | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        path: str | None = None,
        times: int = 1,
    ) -> None:
        """Queue ``times`` answers for the next requests (whose path contains ``path``)."""
        raw: bytes | None
        if fixture is not None:
            raw = fixture_bytes(fixture)
            content_type = content_type or ("text/html" if fixture.endswith(".html") else "application/json")
        elif isinstance(body, dict | list):
            raw = json.dumps(body).encode()
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = body
        with self.lock:
            for _ in range(times):
                self._script.append(
                    Scripted(status, raw, content_type or "application/json", dict(headers or {}), delay, path)
                )

    def add_series(self, slug: str, interval: str, points: dict[int, str]) -> None:
        """History points ``{time_ms: "price"}`` the server answers from."""
        with self.lock:
            self.series.setdefault((slug, interval), {}).update(points)

    def add_history(
        self, slug: str, interval: str, start: datetime, end: datetime, price: Callable[[int], str] | None = None
    ) -> int:
        """Seed every interval instant of ``[start, end)`` with ``price(i)`` (default: a varied exact decimal)."""
        step = STEP_MS[interval]
        first = -(-int(start.timestamp() * 1000) // step) * step
        last = int(end.timestamp() * 1000)
        price = price or (
            lambda i: str(Decimal("40000.123456789012345678") + Decimal(i) * Decimal("1.000000000000000001"))
        )
        points = {t: price(i) for i, t in enumerate(range(first, last, step))}
        self.add_series(slug, interval, points)
        return len(points)

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]

    def history_requests(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith("/history")]

    # -- answering ------------------------------------------------------------------------

    def _record(self, recorded: Recorded) -> None:
        with self.lock:
            self.requests.append(recorded)

    def _next_script(self, path: str) -> Scripted | None:
        with self.lock:
            for index, scripted in enumerate(self._script):
                if scripted.path is None or scripted.path in path:
                    del self._script[index]
                    return scripted
        return None

    def _stamp(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def _answer(self, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "v3" and parts[1] == "assets":
            slug = parts[2]
            if len(parts) == 3:
                return self._asset(slug)
            if len(parts) == 4 and parts[3] == "history":
                return self._history(slug, query)
        return 404, json.dumps({"error": "Not found", "timestamp": self._stamp()}).encode()

    def _asset(self, slug: str) -> tuple[int, bytes]:
        if slug in self.assets:
            return 200, json.dumps({"data": self.assets[slug], "timestamp": self._stamp()}).encode()
        file = FIXTURES / f"asset_{slug}.json"
        if not file.exists():
            return 404, fixture_bytes("unknown_asset.json").replace(b"notacoin", slug.encode())
        body = json.loads(file.read_bytes())
        if self.now_ms is not None:
            body["timestamp"] = self.now_ms
        return 200, json.dumps(body).encode()

    def _history(self, slug: str, query: dict[str, str]) -> tuple[int, bytes]:
        interval = query.get("interval", "")
        if interval not in STEP_MS:
            return 400, json.dumps({"error": f"Invalid interval {interval!r}"}).encode()
        known = (slug, interval) in self.series or (FIXTURES / f"history_{slug}_{interval}.json").exists()
        if not known and not (FIXTURES / f"asset_{slug}.json").exists():
            return 404, fixture_bytes("unknown_asset.json").replace(b"notacoin", slug.encode())
        series = dict(self.series.get((slug, interval), {}))
        file = FIXTURES / f"history_{slug}_{interval}.json"
        if file.exists():
            for item in json.loads(file.read_bytes())["data"]:
                series.setdefault(item["time"], item["priceUsd"])
        start = int(query.get("start", "0"))
        end = int(query.get("end", str(self._stamp())))
        data = [
            {
                "priceUsd": series[t],
                "time": t,
                "date": datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            }
            for t in sorted(series)
            if start <= t <= end  # inclusive end, so the client must cut [start, end) itself
        ]
        return 200, json.dumps({"data": data, "timestamp": self._stamp()}).encode()
