"""Rate limits on the shared cache (Redis): per API key for callers with a key,
per client address for anonymous callers. A refused request gets 429 with
``Retry-After``."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle


class _SettingsRate:
    """Read the rate from the current settings on every request, not once at import."""

    scope: str

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
