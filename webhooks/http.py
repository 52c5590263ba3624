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
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
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


class _Guard:
    """Per-request state shared with the connections: the peer rule and the deadline watchdog."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.sockets: list[socket.socket] = []
        self.refused: str | None = None
        self.aborted = False
        self._lock = threading.Lock()

    def check(self, conn: Any, sock: socket.socket) -> socket.socket:
        with self._lock:
            self.sockets.append(sock)
            aborted = self.aborted
        if aborted:
            sock.close()
            raise NewConnectionError(conn, "deadline exceeded")
        if not self.allow_private:
            peer = str(sock.getpeername()[0])
            if not address_allowed(peer):
                self.refused = peer
                sock.close()
                raise AddressNotAllowed(conn, f"connected address {peer} is not allowed")
        return sock

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            sockets = list(self.sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _adapter(guard: _Guard) -> HTTPAdapter:
    def new_conn(self: Any) -> socket.socket:
        return guard.check(self, super(type(self), self)._new_conn())

    http_conn = type("GuardedHTTPConnection", (HTTPConnection,), {"_new_conn": new_conn})
    https_conn = type("GuardedHTTPSConnection", (HTTPSConnection,), {"_new_conn": new_conn})
    http_pool = type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
    https_pool = type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})

    adapter = HTTPAdapter(max_retries=0, pool_connections=1, pool_maxsize=1)
    adapter.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}
    return adapter


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    headers: dict[str, str]
    body: bytes
    duration_ms: int
    error: str = ""


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
    """POST ``body`` to ``url`` under the rules above; never raises for network trouble."""
    guard = _Guard(allow_private)
    session = requests.Session()
    session.trust_env = False  # no proxies or netrc from the environment
    adapter = _adapter(guard)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    watchdog = threading.Timer(total_timeout, guard.abort)
    watchdog.daemon = True
    started = time.monotonic()
    status_code: int | None = None
    response_headers: dict[str, str] = {}
    content = b""
    error = ""
    try:
        url_check(url, allow_private=True)  # scheme and credentials; addresses are checked on connect
        watchdog.start()
        timeout = urllib3.Timeout(connect=connect_timeout, read=total_timeout, total=total_timeout)
        response = session.post(
            url,
            data=body,
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=timeout,  # type: ignore[arg-type]  # requests passes a urllib3 Timeout through
            allow_redirects=False,
            stream=True,
        )
        try:
            status_code = response.status_code
            response_headers = {k.lower(): v for k, v in response.headers.items()}
            try:
                content = response.raw.read(max_body, decode_content=True) or b""
            except (urllib3.exceptions.HTTPError, OSError):
                content = b""  # the answer's status is what counts; a broken body is only not logged
        finally:
            response.close()
    except UrlNotAllowed as exc:
        error = str(exc)
    except requests.RequestException as exc:
        error = _describe(exc, guard, connect_timeout, total_timeout)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        error = _describe(exc, guard, connect_timeout, total_timeout)
    finally:
        watchdog.cancel()
        session.close()
    duration_ms = int((time.monotonic() - started) * 1000)
    return PostResult(status_code, response_headers, content[:max_body], duration_ms, error)


def _describe(exc: Exception, guard: _Guard, connect_timeout: float, total_timeout: float) -> str:
    if guard.refused is not None:
        return f"Refused: {guard.refused} is not a public address."
    if guard.aborted:
        return f"Timed out after {total_timeout:g} s (total)."
    if isinstance(exc, requests.ConnectTimeout):
        return f"Connect timed out after {connect_timeout:g} s."
    if isinstance(exc, requests.ReadTimeout):
        return f"Timed out after {total_timeout:g} s waiting for the response."
    if isinstance(exc, requests.ConnectionError):
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
