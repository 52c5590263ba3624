"""Checks every request meets before it reaches a view, answered as problem details.

- ``RequestGuardMiddleware``: a NUL byte anywhere in the URL (raw or ``%00``) is a 400;
  a body declared larger than ``API_MAX_BODY_BYTES`` is a 413, and the body is read
  and dropped (up to ``DRAIN_FACTOR`` times the limit) so the keep-alive connection
  stays usable; a query parameter the operation does not declare in the OpenAPI
  schema is a 400 naming it.
- ``FailureRateLimitMiddleware``: a client address that got more than
  ``API_FAILURE_RATE_LIMIT`` answers 401 (failed authentication) or 404 in the window
  gets 429 with ``Retry-After`` on every request until the window ends.
- ``SessionMiddleware``, ``AuthenticationMiddleware``, ``MessageMiddleware``: Django's,
  skipped for ``/api/``. The API authenticates every request by its ``Api-Key`` header,
  keeps no session, sets no cookie and shows no flash message, so an API request pays for
  none of them; every other path (the admin) gets Django's behaviour unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as _AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as _SessionMiddleware
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from core.errors import problem_response
from core.throttling import CACHE_ERRORS, failure_key, leases_forget

logger = logging.getLogger(__name__)

_ROUTE_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")
_METHODS = ("get", "post", "put", "patch", "delete")


_declared_lock = threading.Lock()


def declared_query_parameters() -> dict[tuple[str, str], frozenset[str]]:
    """The query parameters of every operation, as the served OpenAPI schema declares them.

    Built once per process (``config.wsgi`` builds it before serving): schema generation is
    not thread-safe, so concurrent first requests wait for one build instead of racing."""
    with _declared_lock:
        return _declared_query_parameters()


@functools.cache
def _declared_query_parameters() -> dict[tuple[str, str], frozenset[str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    declared: dict[tuple[str, str], frozenset[str]] = {}
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                names = frozenset(p["name"] for p in operation.get("parameters", []) if p.get("in") == "query")
                declared[(path, method.upper())] = names
    return declared


# A body refused with 413 is still read (and dropped) up to this many times the limit, so the
# server can keep the connection alive; past that it closes the connection instead.
DRAIN_FACTOR = 16


def _drain(request: HttpRequest, length: int, cap: int) -> None:
    if length > cap:
        return
    remaining = length
    while remaining > 0:
        chunk = request.read(min(remaining, 64 * 1024))
        if not chunk:
            return
        remaining -= len(chunk)


def _schema_path(route: str) -> str:
    return "/" + _ROUTE_PARAMETER.sub(r"{\1}", route)


class RequestGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or b"\x00" in unquote_to_bytes(query):
            return problem_response(400, "invalid_url", "The URL contains a NUL byte.", request)
        declared = request.META.get("CONTENT_LENGTH") or ""
        limit = settings.API_MAX_BODY_BYTES
        if declared.isdigit() and int(declared) > limit:
            _drain(request, int(declared), limit * DRAIN_FACTOR)
            return problem_response(413, "payload_too_large", f"The request body exceeds {limit} bytes.", request)
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        if not request.path.startswith("/api/v1/") or request.resolver_match is None or not request.GET:
            return None
        method = "GET" if request.method == "HEAD" else (request.method or "")
        allowed = declared_query_parameters().get((_schema_path(request.resolver_match.route), method))
        if allowed is None:  # not an operation of the schema (OPTIONS, a 405): the view answers
            return None
        unknown = sorted(name for name in request.GET if name not in allowed)
        if not unknown:
            return None
        accepted = ", ".join(sorted(allowed)) or "none"
        return problem_response(
            400,
            "validation_error",
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            request,
            errors={name: [f"Unknown query parameter; this operation accepts: {accepted}."] for name in unknown},
        )


class FailureRateLimitMiddleware:
    """Rate-limits, per client address, the answers probing produces: 401 and 404."""

    COUNTED = frozenset({401, 404})
    EXEMPT = ("/healthz", "/readyz")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rate = settings.API_FAILURE_RATE_LIMIT
        if not rate or request.path in self.EXEMPT:
            return self.get_response(request)
        limit, window = SimpleRateThrottle.parse_rate(None, rate)  # type: ignore[arg-type]
        address = BaseThrottle().get_ident(request)  # type: ignore[arg-type]
        key = failure_key(address)
        try:
            failures = cache.get(key, 0)
        except CACHE_ERRORS as exc:
            logger.warning("Failure rate limit not enforced: the cache is unreachable (%s).", exc)
            failures = 0
        if limit is not None and failures >= limit:
            response = problem_response(
                429,
                "throttled",
                "Too many failed (401) or not-found (404) requests from this address; wait before retrying.",
                request,
                retry_after=window,
            )
            response["Retry-After"] = str(window)
            return response
        response = self.get_response(request)
        if response.status_code in self.COUNTED:
            with contextlib.suppress(*CACHE_ERRORS):
                cache.add(key, 0, window)
                cache.incr(key)
            leases_forget()  # the fast path reads the failure count again before its next answer
        return response


API_PREFIX = "/api/"


class _NotForApi:
    get_response: Any

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_NotForApi, _SessionMiddleware):
    pass


class AuthenticationMiddleware(_NotForApi, _AuthenticationMiddleware):
    pass


class MessageMiddleware(_NotForApi, _MessageMiddleware):
    pass
