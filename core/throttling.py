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
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)
CACHE_ERRORS = (RedisError, OSError)


def failure_key(address: str | None) -> str:
    """The cache key counting an address's 401 and 404 answers (``FailureRateLimitMiddleware``)."""
    return "failures:" + hashlib.sha256(str(address).encode()).hexdigest()


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


# The fast path (core.hotpath) takes rate-limit hits from Redis in leases: a process counts a
# lease of several hits at once in the shared counter and admits that many requests without
# another round trip. A lease is at most 1/LEASE_SHARE of the limit and LEASE_MAX hits (one
# hit, so one round trip per request, for limits under LEASE_SHARE per period). Hits leased
# and not used in their window stay counted, so a client may be refused at most
# (processes x (lease - 1)) requests before its limit, never admitted beyond it. The
# address's failure count is read with each lease, and a 401 or 404 counted by this
# process drops its leases.
LEASE_SHARE = 1000
LEASE_MAX = 100
_LEASES_MAX = 10_000


@dataclass
class _Lease:
    counter: str  # the window's counter the hits were taken from
    left: int


@dataclass(frozen=True)
class Admission:
    """A request the fast path counted: where to give its hit back if Django answers it instead."""

    counter: str | None
    lease: _Lease | None = None


_leases: dict[tuple[str, str], _Lease] = {}
_leases_lock = threading.Lock()


def leases_forget() -> None:
    """Drop every lease this process holds: the next fast-path request reads the counters again."""
    with _leases_lock:
        _leases.clear()


# KEYS: the address's failure counter, this window's rate counter, the previous window's
# (either counter "" when its limit is off). ARGV: the rate counter's time to live, the hits
# to count. Returns the failure count, this window's count, the previous window's count.
_ADMIT = """
local failures = false
if KEYS[1] ~= "" then failures = redis.call("GET", KEYS[1]) end
local count, before = 0, false
if KEYS[2] ~= "" then
  count = redis.call("INCRBY", KEYS[2], ARGV[2])
  if count == tonumber(ARGV[2]) then redis.call("EXPIRE", KEYS[2], ARGV[1]) end
  before = redis.call("GET", KEYS[3])
end
return {failures, count, before}
"""
_admit_scripts: dict[int, Any] = {}


def hot_admit(environ: dict[str, Any], *, scope: str, ident: str | None) -> Admission | None:
    """Count a fast-path request as the throttles would, from a lease this process holds or
    with a new lease, and check its address's failure count, in at most one Redis round trip
    (one script): the ``scope`` limit keyed on ``ident`` (the client address when None) and
    ``FailureRateLimitMiddleware``'s limit. None when either refuses (the hits taken back) or
    the cache is not Redis or is unreachable: the request then goes to Django, which answers
    it as always (the 429, or the request unthrottled with a warning)."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    headers = {} if forwarded is None else {"x-forwarded-for": forwarded}
    address = BaseThrottle().get_ident(SimpleNamespace(META=environ, headers=headers))  # type: ignore[arg-type]
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
    failure_rate = settings.API_FAILURE_RATE_LIMIT
    keys = [backend.make_key(failure_key(address)) if failure_rate else "", "", ""]
    limit, duration, into, size = 0, 1, 0.0, 0
    lease_key = (scope, str(ident if ident is not None else address))
    if rate:
        parsed_limit, parsed_duration = SimpleRateThrottle.parse_rate(None, rate)  # type: ignore[arg-type]
        limit, duration = parsed_limit or 0, parsed_duration or 1
        window, into = divmod(time.time(), duration)
        key = SimpleRateThrottle.cache_format % {"scope": scope, "ident": lease_key[1]}
        keys[1] = backend.make_key(f"{key}:{int(window)}")
        keys[2] = backend.make_key(f"{key}:{int(window) - 1}")
        size = max(1, min(LEASE_MAX, limit // LEASE_SHARE))
        with _leases_lock:
            lease = _leases.get(lease_key)
            if lease is not None and lease.counter == keys[1] and lease.left > 0:
                lease.left -= 1
                return Admission(None, lease)
    client = backend._cache.get_client(None, write=True)  # type: ignore[attr-defined]
    script = _admit_scripts.get(id(client)) or _admit_scripts.setdefault(id(client), client.register_script(_ADMIT))
    try:
        failures, count, before = script(keys=keys, args=[2 * duration, size])
    except CACHE_ERRORS:
        return None
    if failure_rate and failures is not None:
        failure_limit, _ = SimpleRateThrottle.parse_rate(None, failure_rate)  # type: ignore[arg-type]
        if not failures.isdigit() or int(failures) >= (failure_limit or 0):
            _give_back(keys[1], size)
            return None
    if not rate:
        return Admission(None)
    # Of the hits just counted, those that fit under the limit: this request's and the lease's.
    fit = min(size, int(limit - (int(count) - size) - int(before or 0) * (1 - into / duration)))
    if fit < 1:
        _give_back(keys[1], size)
        return None
    _give_back(keys[1], size - fit)
    if fit > 1:
        with _leases_lock:
            if len(_leases) >= _LEASES_MAX:
                _leases.clear()
            _leases[lease_key] = _Lease(keys[1], fit - 1)
    return Admission(keys[1])


def _give_back(counter: str, hits: int) -> None:
    if not counter or hits < 1:
        return
    backend = caches["default"]
    with contextlib.suppress(*CACHE_ERRORS):
        backend._cache.get_client(None, write=True).decrby(counter, hits)  # type: ignore[attr-defined]


def hot_release(admission: Admission) -> None:
    """Give back the hit of a request the fast path counted and then left to Django."""
    if admission.lease is not None:
        with _leases_lock:
            admission.lease.left += 1
    elif admission.counter is not None:
        _give_back(admission.counter, 1)
