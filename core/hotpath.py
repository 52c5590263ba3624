"""The hottest API reads, answered in front of Django with the bytes Django would send.

A few GETs make most of the API's traffic: the catalog, a buyer's deals, one deal, a quant's
entitlements, price history. ``HotReads`` wraps the WSGI application and answers the plain
case of each (a first page, a known caller, no conditional header) from the same selectors
and wire functions the views use, without the per-request machinery around them: the
middleware chain, URL resolution, DRF's request, negotiation, permission and throttle
objects, the response object.

Anything else goes to Django unchanged (the request *falls through*): another method or
path, a query parameter the route does not take, a cursor, a conditional header, a body, a
host Django would refuse, a missing, unknown or expired key (so 401, 403, 404 and 429 are
always Django's, counted as they always were), a key whose last use is due to be written,
and any error. What Django's path does for a request it answers, the fast path does too:

- the key is checked by the function ``ApiKeyAuthentication`` uses
  (``accounts.authentication.api_key_check``, through ``hot_caller``);
- the request is counted in the caller's rate limit on the counters DRF's throttles use,
  from a lease of hits this process holds or with a new lease, which also reads the
  address's failure count (``core.throttling.hot_admit``: at most one Redis round trip); a
  caller past either limit falls through with its hit given back, and Django answers the 429;
- the security headers are the ones SecurityMiddleware and XFrameOptionsMiddleware add,
  taken from those middlewares once per process;
- the key (when it is not kept) and the answer are read on one connection of the pool
  Django's connections come from (its time zone set up by Django), with prepared
  statements, and it goes back to the pool at once.

``tests/core/test_hotpath.py`` checks that every route answers with Django's status,
headers and body, byte for byte, and falls through wherever Django answers differently.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.db import connections
from django.http import HttpResponse
from django.http.request import split_domain_port, validate_host
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.encoding import escape_uri_path, iri_to_uri
from psycopg.types.datetime import TimestamptzLoader
from rest_framework.views import APIView

from core.pagination import page_size_value
from core.throttling import hot_admit, hot_release

logger = logging.getLogger(__name__)

Headers = list[tuple[str, str]]
StartResponse = Callable[[str, Headers], Any]


@dataclass(frozen=True)
class Answer:
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()  # the view's own, in the order the view sets them


class FallThrough(Exception):
    """Raised by an answer that leaves the request to Django."""


@contextlib.contextmanager
def _pooled_cursor() -> Iterator[Any]:
    """A cursor on a connection of the pool Django's own connections come from (its time
    zone set up by Django), returned to the pool at the end: no Django connection wrapper
    to set up and tear down per request."""
    django_connection = connections["default"]
    if django_connection.in_atomic_block:  # inside a caller's transaction: read what it sees
        with django_connection.cursor() as cursor:
            yield cursor
        return
    pool = getattr(django_connection, "pool", None)
    if pool is None:
        raise FallThrough("no connection pool")
    # Server-side binding (psycopg's own cursor, not Django's client-side one): the
    # parameters are not quoted into the SQL, and each statement is prepared once per
    # connection (HOT_READS_PREPARE; Django prepares none). Timestamps are read by
    # psycopg's own loader (its C one), which gives the same aware datetimes in the
    # session's zone (UTC, set by Django) as the Python subclass Django registers on the
    # connection, at a fraction of the cost.
    with pool.connection() as conn, psycopg.Cursor(conn) as cursor:
        cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        threshold = conn.prepare_threshold
        if settings.HOT_READS_PREPARE:
            conn.prepare_threshold = 0  # planned once per connection, not once per request
        try:
            yield cursor
        finally:
            conn.prepare_threshold = threshold  # Django's own queries stay unprepared


@dataclass(frozen=True)
class HotRequest:
    environ: dict[str, Any]
    query: dict[str, str]
    caller: Any  # the account, or None on a public route
    held: Any = None  # the cursor the caller's key was read on, kept for the answer

    def page_size(self) -> int:
        """The ``page_size`` asked for, as the lists read it; a bad one falls through (Django's 400)."""
        raw = self.query.get("page_size")
        if raw is None:
            return int(settings.API_PAGE_SIZE)
        try:
            return page_size_value(raw, maximum=settings.API_MAX_PAGE_SIZE)
        except ValueError:
            raise FallThrough("page_size") from None

    @contextlib.contextmanager
    def cursor(self) -> Iterator[Any]:
        """The cursor the caller's key was read on, or, on a public route, one of its own
        (``_pooled_cursor``): a request holds one connection at most."""
        if self.held is not None:
            yield self.held
            return
        with _pooled_cursor() as cursor:
            yield cursor

    def absolute_uri(self) -> str:
        """``request.build_absolute_uri()`` as Django computes it."""
        environ = self.environ
        query = environ.get("QUERY_STRING", "")
        path = escape_uri_path(environ["PATH_INFO"]) + ("?" + iri_to_uri(query) if query else "")
        return f"{'https' if _is_secure(environ) else 'http'}://{_host(environ)}{path}"


@dataclass(frozen=True)
class HotRoute:
    """One read: its path, the view Django answers it with, who may call it, the query
    parameters it answers, and the answer.

    ``answer(request, *path_groups)`` returns the answer, or None to let Django answer.
    ``roles`` None means a public route: no key is read and the anonymous limit applies,
    as for a view with no authentication classes."""

    pattern: re.Pattern[str]
    view: type[APIView]
    roles: frozenset[str] | None
    params: frozenset[str]
    answer: Callable[..., Answer | None]

    @functools.cached_property
    def view_headers(self) -> Headers:
        """The headers DRF's ``finalize_response`` adds for the view: Vary (more than one
        renderer), then Allow."""
        view = self.view()
        view.setup(None)  # type: ignore[arg-type]  # as for a request: HEAD answered by GET
        vary = [("Vary", "Accept")] if len(view.renderer_classes) > 1 else []
        return [*vary, ("Allow", ", ".join(view.allowed_methods))]


# Accept headers DRF answers with the JSON renderer and no parameter (an ``indent``, another
# media type or a list of them go to DRF's negotiation).
_PLAIN_ACCEPT = frozenset({"*/*", "application/json", "application/*"})


def _plain_settings() -> bool:
    """No setting that makes Django's path answer differently from what the fast path writes."""
    return settings.FORCE_SCRIPT_NAME is None and not settings.PREPEND_WWW and not settings.DISALLOWED_USER_AGENTS


def _is_secure(environ: dict[str, Any]) -> bool:
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = environ.get(header)
        if value is not None:
            return bool(value.split(",", 1)[0].strip() == secure_value)
    return bool(environ.get("wsgi.url_scheme") == "https")


def _host(environ: dict[str, Any]) -> str:
    return str(environ["HTTP_HOST"])


def _host_allowed(environ: dict[str, Any]) -> bool:
    """Django's own host check (``HttpRequest.get_host``), for the usual case of a Host header."""
    host = environ.get("HTTP_HOST")
    if not host or settings.USE_X_FORWARDED_HOST:
        return False
    domain, _ = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def _django_headers(secure: bool) -> tuple[str, Headers]:
    """X-Frame-Options, and what SecurityMiddleware adds after Content-Length, for this scheme."""
    request = WSGIRequest(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "wsgi.url_scheme": "https" if secure else "http",
            "wsgi.input": io.BytesIO(),
        }
    )
    if secure and settings.SECURE_PROXY_SSL_HEADER:
        request.META[settings.SECURE_PROXY_SSL_HEADER[0]] = settings.SECURE_PROXY_SSL_HEADER[1]
    response = XFrameOptionsMiddleware(lambda r: HttpResponse()).process_response(request, HttpResponse())
    frame = response.headers.get("X-Frame-Options", "")
    response = SecurityMiddleware(lambda r: HttpResponse()).process_response(request, HttpResponse())
    return frame, [(name, value) for name, value in response.items() if name != "Content-Type"]


class HotReads:
    """WSGI application: ``routes`` answered here when they can be, everything else by ``app``."""

    def __init__(
        self,
        app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
        routes: Iterable[HotRoute],
        *,
        authenticate: Callable[[str, Any], tuple[Any, str] | None],
    ) -> None:
        self.app = app
        self.routes = list(routes)
        self.authenticate = authenticate
        self._headers: dict[bool, tuple[str, Headers]] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "GET":
            path = environ.get("PATH_INFO", "")
            for route in self.routes:
                match = route.pattern.fullmatch(path)
                if match is not None:
                    answered = self._serve(route, match.groups(), environ, start_response)
                    if answered is not None:
                        return answered
                    break
        return self.app(environ, start_response)

    def _answer(
        self, route: HotRoute, groups: tuple[str, ...], environ: dict[str, Any], query: dict[str, str]
    ) -> Answer | None:
        """The answer, or None when Django should answer (any error included: Django answers
        it, and logs what it has to)."""
        try:
            if route.roles is None:
                return self._admitted(route, groups, HotRequest(environ, query, None), scope="anon", ident=None)
            with _pooled_cursor() as cursor:
                found = self.authenticate(environ.get("HTTP_AUTHORIZATION", ""), cursor)
                if found is None or found[0].role not in route.roles:
                    return None
                request = HotRequest(environ, query, found[0], cursor)
                return self._admitted(route, groups, request, scope="api_key", ident=found[1])
        except FallThrough:
            return None
        except Exception:
            logger.debug("Fast path fell through on an error.", exc_info=True)
            return None

    @staticmethod
    def _admitted(
        route: HotRoute, groups: tuple[str, ...], request: HotRequest, *, scope: str, ident: str | None
    ) -> Answer | None:
        """The answer to a caller counted in its rate limit; its hit given back when Django answers."""
        admission = hot_admit(request.environ, scope=scope, ident=ident)
        if admission is None:
            return None
        answer = None
        try:
            answer = route.answer(request, *groups)
        finally:
            if answer is None:
                hot_release(admission)
        return answer

    def _serve(
        self, route: HotRoute, groups: tuple[str, ...], environ: dict[str, Any], start_response: StartResponse
    ) -> list[bytes] | None:
        if (
            environ.get("CONTENT_LENGTH") not in (None, "", "0")
            or environ.get("HTTP_ACCEPT", "*/*") not in _PLAIN_ACCEPT  # DRF's negotiation decides
            or environ.get("SCRIPT_NAME")
            or any(name.startswith("HTTP_IF_") for name in environ)
            or not _plain_settings()
        ):
            return None
        secure = _is_secure(environ)
        if (settings.SECURE_SSL_REDIRECT and not secure) or not _host_allowed(environ):
            return None
        query: dict[str, str] = {}
        for name, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
            if name not in route.params or name in query or "\x00" in value:
                return None
            query[name] = value
        answer = self._answer(route, groups, environ, query)
        if answer is None:
            return None
        frame, security = self._headers.get(secure) or self._headers.setdefault(secure, _django_headers(secure))
        headers = [("Content-Type", answer.content_type), *answer.headers]
        headers.extend(route.view_headers)
        if frame:
            headers.append(("X-Frame-Options", frame))
        headers.append(("Content-Length", str(len(answer.body))))
        headers.extend(security)
        start_response("200 OK", headers)
        return [answer.body]
