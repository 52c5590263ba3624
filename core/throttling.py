"""Rate limits on the shared cache (Redis): per API key for callers with a key,
per client address for anonymous callers. A refused request gets 429 with
``Retry-After``.

When the cache is unreachable the limits are not enforced (and a warning is
logged): an outage of Redis must not take the API down with it."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)
CACHE_ERRORS = (RedisError, OSError)


class _SettingsRate:
    """Read the rate from the current settings on every request, not once at import;
    let the request through when the cache cannot be reached."""

    scope: str

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except CACHE_ERRORS as exc:
            logger.warning("Rate limit %r not enforced: the cache is unreachable (%s).", self.scope, exc)
            return True

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
