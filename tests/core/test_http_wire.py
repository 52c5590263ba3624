"""Bad input over a real HTTP/1.1 keep-alive connection to gunicorn: a problem answer, never a
5xx, and the same connection serves the next request."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.core.conftest import Server

pytestmark = pytest.mark.slow


def _next_request_works(conn: Any) -> None:
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read()) == {"status": "ok"}


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    body = response.read()
    assert response.status == status, body
    assert response.getheader("Content-Type") == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["code"] == code
    return problem


@pytest.mark.parametrize("idempotency_key", [None, "big-body-1"])
@pytest.mark.parametrize("path", ["/api/v1/deals", "/api/v1/ops/accounts", "/api/v1/nowhere"])
def test_a_body_over_the_limit_is_a_413_and_the_connection_stays_usable(
    gunicorn_server: Server, path: str, idempotency_key: str | None
) -> None:
    conn = gunicorn_server.connection()
    body = b'{"name": "' + b"x" * 1_100_000 + b'"}'
    headers = {"Content-Type": "application/json", "Authorization": "Api-Key not.valid"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    conn.request("POST", path, body=body, headers=headers)
    _problem(conn.getresponse(), 413, "payload_too_large")
    _next_request_works(conn)  # same socket: http.client reuses it while the server keeps it alive
    conn.close()


@pytest.mark.parametrize(
    "target",
    ["/api/v1/datasets/BT%00C", "/api/v1/datasets?page=%00", "/api/v1/deals?seller=a%00b", "/api/v1/x%00"],
)
def test_a_nul_byte_in_the_url_is_a_400_and_the_connection_stays_usable(gunicorn_server: Server, target: str) -> None:
    conn = gunicorn_server.connection()
    for credentials in (None, "Api-Key not.valid"):
        conn.request("GET", target, headers={"Authorization": credentials} if credentials else {})
        _problem(conn.getresponse(), 400, "invalid_url")
        _next_request_works(conn)
    conn.close()


def test_a_raw_nul_byte_in_the_request_line_never_gets_a_5xx(gunicorn_server: Server) -> None:
    with socket.create_connection((gunicorn_server.host, gunicorn_server.port), timeout=10) as sock:
        sock.sendall(b"GET /api/v1/datasets?x=\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 4"), status_line


@pytest.mark.parametrize("number", ["1e999999999", "1e-999999999"])
def test_huge_or_tiny_exponents_are_a_400(gunicorn_server: Server, number: str) -> None:
    conn = gunicorn_server.connection()
    conn.request("GET", f"/api/v1/datasets?page={number}")
    _problem(conn.getresponse(), 400, "validation_error")
    _next_request_works(conn)
    conn.close()
