"""Database connection pool health."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool


def pool_connection_check(conn: Any) -> None:
    """The check the pool runs on a connection before handing it out.

    As psycopg's own ``ConnectionPool.check_connection``, plus: a broken connection
    usually means the database restarted or failed over and every idle connection is
    dead, so the pool checks (and replaces) all of them at once. Left to the default,
    the pool finds dead connections one at a time with a growing back-off between
    them, and a request times out (DB_POOL_TIMEOUT) before it reaches a live one
    while more than a handful are dead."""
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)
        if isinstance(pool, ConnectionPool):
            pool.check()
        raise
