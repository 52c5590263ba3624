"""Helpers the tests that start real processes share: free ports, the test database's URL, polling."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from django.db import connection

T = TypeVar("T")


def free_port() -> int:
    """A local TCP port nothing listens on (free when asked; a test that binds it later may race, rarely)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_database_url() -> str:
    """DATABASE_URL, pointed at the test database pytest-django created, for processes a test starts."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def wait_until(predicate: Callable[[], T], timeout: float, message: str, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy, and return it; fail with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, message
        time.sleep(interval)
