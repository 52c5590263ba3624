"""Kombu's Redis transport, sending every message with one client per connection pool.

Kombu's Redis channel builds a new ``redis.Redis`` for every message it sends (its
constructor sets up response callbacks and retry settings each time): about a quarter of
the CPU a write spends handing its work to Celery. A ``redis.Redis`` holds no connection of
its own (its pool does) and is safe to share between threads, so each channel keeps one per
pool. Consuming (the worker's polling client) is unchanged.

``config/settings.py`` names this transport for ``redis://`` brokers."""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        kept = self.__dict__.get("_send_client")
        if kept is None or kept[0] is not pool:  # a new pool after a reconnect gets a new client
            kept = (pool, super()._create_client())
            self.__dict__["_send_client"] = kept
        return kept[1]


class Transport(kombu_redis.Transport):
    Channel = Channel
