"""Rate limits on the shared cache (Redis): per API key for callers with a key,
per client address for anonymous callers. A refused request gets 429 with
``Retry-After``.

Each limit is a sliding-window counter: the count of the current window plus the
previous window's count weighted by how much of it still overlaps the last
``duration`` seconds. One Redis round trip per request (a pipelined INCR, GET and
EXPIRE), whatever the rate, where a log of timestamps would grow with it. A refused
request is not counted.

When the cache is unreachable the limits are not enforced (and a warning is
logged): an outage of Redis must not take the API down with it."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)
CACHE_ERRORS = (RedisError, OSError)


def _window_hit(key: str, window: int, duration: int) -> tuple[int, int]:
    """Count one request in ``window``; returns (this window's count, the previous window's)."""
    current, previous = f"{key}:{window}", f"{key}:{window - 1}"
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        current, previous = backend.make_and_validate_key(current), backend.make_and_validate_key(previous)
        client = backend._cache.get_client(current, write=True)  # type: ignore[attr-defined]
        pipe = client.pipeline(transaction=False)
        pipe.incr(current)
        pipe.get(previous)
        pipe.expire(current, 2 * duration)
        count, before, _ = pipe.execute()
        return int(count), int(before or 0)
    cache.add(current, 0, timeout=2 * duration)
    try:
        count = cache.incr(current)
    except ValueError:  # expired between add and incr
        cache.add(current, 1, timeout=2 * duration)
        count = 1
    return int(count), int(cache.get(previous, 0))


def _window_unhit(key: str, window: int) -> None:
    with contextlib.suppress(ValueError):
        cache.decr(f"{key}:{window}")


class _SettingsRate:
    """Read the rate from the current settings on every request, not once at import;
    count in a sliding window; let the request through when the cache cannot be reached."""

    scope: str
    rate: str | None
    num_requests: int
    duration: int
    cache_format: str

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if key is None:
            return True
        now = time.time()
        window, into = divmod(now, self.duration)
        try:
            count, before = _window_hit(key, int(window), self.duration)
        except CACHE_ERRORS as exc:
            logger.warning("Rate limit %r not enforced: the cache is unreachable (%s).", self.scope, exc)
            return True
        overlap = 1 - into / self.duration
        if count + before * overlap <= self.num_requests:
            return True
        with contextlib.suppress(*CACHE_ERRORS):
            _window_unhit(key, int(window))
        # Wait until enough of the previous window has slid out, or until this window ends.
        if before and count <= self.num_requests:
            needed = (count + before * overlap - self.num_requests) / before
            self._wait = max(1.0, needed * self.duration)
        else:
            self._wait = max(1.0, self.duration - into)
        return False

    def wait(self) -> float:
        return getattr(self, "_wait", float(self.duration))

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return None if rate is None else str(rate)


class ApiKeyRateThrottle(_SettingsRate, SimpleRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        api_key = request.auth
        prefix = getattr(api_key, "prefix", None)
        if prefix is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": prefix}


class AnonymousRateThrottle(_SettingsRate, AnonRateThrottle):
    scope = "anon"
