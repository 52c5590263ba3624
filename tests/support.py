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


def wait_until(
    predicate: Callable[[], T], timeout: float, message: str | Callable[[], str], interval: float = 0.05
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that value.

    At the deadline the test fails with ``message`` (a callable is asked for it then, so it can
    say what was last seen). An exception the predicate raises ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(interval)
