"""A real gunicorn (gthread, keep-alive, as deployed) serving the test database, and requests
sent to the WSGI application as gunicorn sends them."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from tests.support import child_database_url, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def connection_kept_between_requests() -> Iterator[None]:
    """As Django's test client does: a request sent to the WSGI application does not close the
    connection holding the test's transaction."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@dataclass(frozen=True)
class Server:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=30)


def _answers(server: Server) -> bool:
    try:
        conn = server.connection()
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@pytest.fixture(scope="module")
def gunicorn_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    """gunicorn as the Dockerfile runs it (gthread), on a free port, against the test database;
    stopped after the module, so it holds no database connection beyond it."""
    with django_db_blocker.unblock():
        database_url = child_database_url()
    server = Server("127.0.0.1", free_port())
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi:application",
            "--bind",
            f"{server.host}:{server.port}",
            "--worker-class",
            "gthread",
            "--workers",
            "1",
            "--threads",
            "4",
            "--keep-alive",
            "30",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": django_settings.REDIS_URL,
            "PRICE_SOURCE": "synthetic",
            "DB_POOL_MIN_SIZE": "1",
            "DB_POOL_MAX_SIZE": "4",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def up() -> bool:
            assert process.poll() is None, "gunicorn exited at start"
            return _answers(server)

        wait_until(up, 60, "gunicorn never answered /healthz", interval=0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
