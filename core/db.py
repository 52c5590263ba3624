"""Database connection pool health."""

from __future__ import annotations

import contextlib
import select
from collections.abc import Iterator
from typing import Any

from django.db import connection
from psycopg import pq
from psycopg_pool import ConnectionPool


def _looks_alive(conn: Any) -> bool:
    """An idle connection with nothing waiting to be read: the server has not closed it.

    A server that ends a session (restart, failover, ``pg_terminate_backend``, a proxy's
    idle timeout) sends an error and closes the socket, which makes the socket readable; a
    healthy idle connection has nothing to read. One ``poll`` with no wait, no round trip."""
    if conn.closed or conn.broken or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return False
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def pool_connection_check(conn: Any) -> None:
    """The check the pool runs on a connection before handing it out.

    A connection that looks alive (:func:`_looks_alive`: no pending input, no error) is
    handed out without a round trip. Any other gets psycopg's own
    ``ConnectionPool.check_connection`` (a round trip), plus: a broken connection
    usually means the database restarted or failed over and every idle connection is
    dead, so the pool checks (and replaces) all of them at once. Left to the default,
    the pool finds dead connections one at a time with a growing back-off between
    them, and a request times out (DB_POOL_TIMEOUT) before it reaches a live one
    while more than a handful are dead."""
    if _looks_alive(conn):
        return
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)
        if isinstance(pool, ConnectionPool):
            pool.check()
        raise


@contextlib.contextmanager
def cursor_or_default(cursor: Any | None) -> Iterator[Any]:
    """``cursor`` when a caller brings one (the fast read path brings a pooled connection's),
    else a cursor of Django's connection, closed at the end."""
    if cursor is not None:
        yield cursor
        return
    with connection.cursor() as own:
        yield own
