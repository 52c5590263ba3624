"""Outbound HTTP for webhook deliveries, safe to point at URLs strangers type in.

- Only http and https, no credentials in the URL, no redirects followed, no
  proxies from the environment.
- Short timeouts: connect (default 3 s) and a hard total deadline (default
  15 s) that also bounds a receiver dripping its answer byte by byte.
- At most ``max_body`` bytes of the response are read.
- Unless ``WEBHOOKS_ALLOW_PRIVATE_URLS`` is true, no request reaches a
  private, loopback, link-local, unspecified, multicast, reserved or
  cloud-metadata address. The check runs twice: on the resolved host when an
  endpoint is registered (a helpful 400), and on the address the socket
  actually connected to, before a single byte is sent (no DNS-rebinding gap).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

USER_AGENT = "BackOffice-Webhooks/1.0 (+https://backoffice.example/docs/webhooks)"

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services answer on addresses the generic rules below already refuse;
# they are named so that no future loosening of those rules lets them through.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlNotAllowed(ValueError):
    """The URL may not receive webhooks; the message says why, for the person who typed it."""


class AddressNotAllowed(NewConnectionError):
    """Raised after connect and before sending when the peer address is not allowed."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def address_allowed(address: str | _IP) -> bool:
    """May a webhook be sent to this IP address? Only globally routable unicast addresses may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
    candidates: list[_IP] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates.extend(_embedded_ipv4(ip))
    for candidate in candidates:
        if (
            candidate in _METADATA_ADDRESSES
            or not candidate.is_global
            or candidate.is_private
            or candidate.is_loopback
            or candidate.is_link_local
            or candidate.is_unspecified
            or candidate.is_multicast
            or candidate.is_reserved
        ):
            return False
    return True


def url_check(url: str, *, allow_private: bool) -> None:
    """Raise UrlNotAllowed unless ``url`` is an http(s) URL webhooks may be sent to.

    Without ``allow_private`` the host is resolved now and every address it
    resolves to must be public.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowed(f"Not a valid URL: {exc}.") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise UrlNotAllowed("Only http and https URLs can receive webhooks.")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UrlNotAllowed("Credentials in the URL are not allowed; authenticate with the signature instead.")
    host = parts.hostname
    if not host:
        raise UrlNotAllowed("The URL has no host.")
    if any(ch.isspace() for ch in url):
        raise UrlNotAllowed("The URL may not contain whitespace.")
    if allow_private:
        return
    try:
        literal: _IP | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[_IP] = [literal]
    else:
        default_port = 443 if parts.scheme.lower() == "https" else 80
        try:
            infos = socket.getaddrinfo(host, port or default_port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UrlNotAllowed(f"The host {host!r} does not resolve.") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        if not address_allowed(address):
            where = "" if literal is not None else f" (what {host!r} resolves to)"
            raise UrlNotAllowed(
                f"{address}{where} is a private, loopback, link-local, multicast, reserved or cloud-metadata "
                "address; webhooks are only sent to public addresses unless the server sets "
                "WEBHOOKS_ALLOW_PRIVATE_URLS=true (for local demos and tests)."
            )


class _Call:
    """One request's state, shared with the connections it uses: the refused peer and the deadline."""

    def __init__(self) -> None:
        self.connections: list[Any] = []
        self.refused: str | None = None
        self.aborted = False
        self.done = False
        self._lock = threading.Lock()

    def attach(self, conn: Any) -> None:
        with self._lock:
            self.connections.append(conn)
            aborted = self.aborted
        if aborted:
            _shutdown(conn)

    def finish(self) -> None:
        with self._lock:
            self.done = True

    def abort(self) -> None:
        # Under the lock, so that a connection handed back to the pool (finish) is never touched.
        with self._lock:
            if self.done:
                return
            self.aborted = True
            for conn in self.connections:
                _shutdown(conn)


def _shutdown(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()


class _Watchdog:
    """One thread for every deadline in the process (no thread per request): aborts calls that overrun."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Call]] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, call: _Call, seconds: float) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhook-deadlines", daemon=True)
                self._thread.start()
            self._seq += 1
            entry = (time.monotonic() + seconds, self._seq, call)
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:  # the thread sleeps until the earliest deadline: wake it only for a new one
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, call = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            if not call.done:
                call.abort()


_watchdog = _Watchdog()


def _connection_classes(allow_private: bool) -> dict[str, type]:
    def new_conn(self: Any) -> socket.socket:
        sock = super(type(self), self)._new_conn()
        call: _Call | None = getattr(_current, "call", None)
        if not allow_private:
            peer = str(sock.getpeername()[0])
            if not address_allowed(peer):
                if call is not None:
                    call.refused = peer
                sock.close()
                raise AddressNotAllowed(self, f"connected address {peer} is not allowed")
        return sock

    def request(self: Any, method: str, url: str, body: Any = None, *args: Any, **kwargs: Any) -> Any:
        call: _Call | None = getattr(_current, "call", None)
        if call is not None:
            call.attach(self)  # the deadline covers a reused connection too
        # The head is held back and leaves with a body in bytes in one write: one segment and
        # one wake-up of the receiver per request, not two.
        self._held_head = b"" if isinstance(body, bytes) and body else None
        try:
            return super(type(self), self).request(method, url, body, *args, **kwargs)
        finally:
            self._held_head = None

    def send(self: Any, data: Any) -> None:
        held = getattr(self, "_held_head", None)
        if held is not None:
            if not held:
                self._held_head = bytes(data)
                return
            self._held_head = None
            data = held + data
        super(type(self), self).send(data)

    body = {"_new_conn": new_conn, "request": request, "send": send}
    http_conn = type("GuardedHTTPConnection", (HTTPConnection,), dict(body))
    https_conn = type("GuardedHTTPSConnection", (HTTPSConnection,), dict(body))
    return {
        "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }


def _per_host_connections() -> int:
    """Connections kept per receiver host (scheme, host, port): as many as the process's sending
    threads, so a host that receives from all of them at once never has its connections discarded."""
    from django.conf import settings

    return max(1, int(settings.WEBHOOKS_SEND_CONCURRENCY))


class _Pools:
    """One urllib3 connection pool per (receiver host, address rule), kept for the process:
    connections are reused by every thread. urllib3 directly, without requests' session layer
    (header merging, hooks, cookies, redirect and proxy resolution for every request), which
    cost a large fan-out more CPU than sending its requests."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, int | None, bool], HTTPConnectionPool] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def get(self, scheme: str, host: str, port: int | None, allow_private: bool) -> HTTPConnectionPool:
        key = (scheme, host, port, allow_private)
        pool = self._pools.get(key)
        if pool is not None and self._pid == os.getpid():
            return pool
        with self._lock:
            if self._pid != os.getpid():  # a forked child never shares its parent's sockets
                self._pools, self._pid = {}, os.getpid()
            pool = self._pools.get(key)
            if pool is None:
                pool_class = _connection_classes(allow_private)[scheme]
                # HTTPS receivers are verified against the same CA bundle requests used.
                tls = {"ca_certs": certifi.where()} if scheme == "https" else {}
                pool = pool_class(host, port, maxsize=_per_host_connections(), block=False, retries=False, **tls)
                self._pools[key] = pool
            return pool

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


pools = _Pools()

# What requests sent by default besides the User-Agent; receivers see the same headers as before.
_DEFAULT_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "keep-alive",
}


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    headers: dict[str, str]
    body: bytes
    duration_ms: int
    error: str = ""


@functools.lru_cache(maxsize=4096)
def _target(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, request target) of a URL that passed the scheme and credentials rules."""
    url_check(url, allow_private=True)  # scheme and credentials; addresses are checked on connect
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port, target


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    allow_private: bool,
    connect_timeout: float,
    total_timeout: float,
    max_body: int,
) -> PostResult:
    """POST ``body`` to ``url`` under the rules above; never raises for network trouble.

    Connections to the same receiver host are kept and reused by every thread of the process.
    """
    call = _Call()
    started = time.monotonic()
    status_code: int | None = None
    response_headers: dict[str, str] = {}
    content = b""
    error = ""
    _current.call = call
    try:
        scheme, host, port, target = _target(url)
        pool = pools.get(scheme, host, port, allow_private)
        _watchdog.watch(call, total_timeout)
        response = pool.urlopen(
            "POST",
            target,
            body=body,
            headers={**_DEFAULT_HEADERS, **headers},
            retries=False,
            redirect=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=total_timeout, total=total_timeout),
            preload_content=False,
            release_conn=False,
        )
        reusable = False
        try:
            status_code = response.status
            response_headers = {k.lower(): v for k, v in response.headers.items()}
            try:
                content = response.read(max_body, decode_content=True) or b""
                # An answer read to its end leaves the connection reusable; a longer one is cut off.
                reusable = not response.read(1, decode_content=True)
            except (urllib3.exceptions.HTTPError, OSError):
                content = b""  # the answer's status is what counts; a broken body is only not logged
        finally:
            call.finish()  # from here the watchdog leaves the connection alone: it may serve another request
            if not reusable or call.aborted:
                response.close()
            response.release_conn()
    except UrlNotAllowed as exc:
        error = str(exc)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        error = _describe(exc, call, connect_timeout, total_timeout)
    finally:
        call.finish()
        _current.call = None
    duration_ms = int((time.monotonic() - started) * 1000)
    return PostResult(status_code, response_headers, content[:max_body], duration_ms, error)


def _describe(exc: Exception, guard: _Call, connect_timeout: float, total_timeout: float) -> str:
    if guard.refused is not None:
        return f"Refused: {guard.refused} is not a public address."
    if guard.aborted:
        return f"Timed out after {total_timeout:g} s (total)."
    if isinstance(exc, NewConnectionError):  # a ConnectTimeoutError too, for urllib3; not a timeout here
        return f"Connection failed: {_root_cause(exc)}"[:500]
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f"Connect timed out after {connect_timeout:g} s."
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return f"Timed out after {total_timeout:g} s waiting for the response."
    if isinstance(exc, urllib3.exceptions.ProtocolError | OSError):
        return f"Connection failed: {_root_cause(exc)}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


def _root_cause(exc: BaseException) -> str:
    seen = exc
    while True:
        nxt = seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen:
            break
        seen = nxt
    reason = getattr(seen, "reason", None)
    return str(reason or seen)
