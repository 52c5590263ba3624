"""Django's PostgreSQL backend, with a connection pool that recovers at once from a
database restart or failover (see ``core.db.pool_connection_check``).

Django builds the pool with ``check=ConnectionPool.check_connection`` and no way to
pass another check, so this backend builds it the same way with ours."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

from core.db import pool_connection_check


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> Any:
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not pool_options:
            return None
        pools: dict[str, ConnectionPool] = self._connection_pools  # type: ignore[attr-defined]
        if self.alias not in pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            pool_options = {} if pool_options is True else pool_options
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # Django sets the real mode later, as in its own backend
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,  # type: ignore[attr-defined]
                check=pool_connection_check if self.settings_dict["CONN_HEALTH_CHECKS"] else None,
                **pool_options,
            )
            pools.setdefault(self.alias, pool)
        return pools[self.alias]
