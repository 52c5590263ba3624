"""CoinCap REST API v3 client (``https://rest.coincap.io/v3``).

Two calls: ``GET /assets/{slug}`` (the asset now: price, market cap, supply...) and
``GET /assets/{slug}/history?interval=h1|d1&start=<ms>&end=<ms>``. CoinCap wraps every
answer as ``{"data": ..., "timestamp": <ms>}``, sends numbers as strings and times as
milliseconds since the epoch; this client turns them into ``Decimal`` and aware UTC
datetimes and raises a :class:`CoinCapError` for anything else, so nothing unexpected
ever reaches the database.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

logger = logging.getLogger(__name__)

INTERVALS = ("h1", "d1")


class CoinCapError(Exception):
    """Anything that keeps us from getting trustworthy data from CoinCap."""

    reason = "error"


class CoinCapUnavailable(CoinCapError):
    """CoinCap could not be reached or kept failing (timeouts, connection errors, 5xx, 429)."""

    reason = "unavailable"


class CoinCapRateLimited(CoinCapUnavailable):
    """CoinCap kept answering 429, or asked us to wait longer than we are willing to."""

    reason = "rate_limited"


class CoinCapAuthError(CoinCapError):
    """CoinCap refused our API key (401/403): a configuration problem, not worth retrying."""

    reason = "unauthorised"


class CoinCapUnexpectedResponse(CoinCapError):
    """CoinCap answered, but not with the shape the v3 API documents (HTML, wrong types...)."""

    reason = "unexpected_response"


class CoinCapRetiredApi(CoinCapUnexpectedResponse):
    """CoinCap answered with a ``message`` object instead of data, as retired API versions do
    (e.g. ``{"data": {"message": "We are deprecating this version..."}}``)."""

    reason = "retired_api"


class CoinCapUnknownAsset(CoinCapError):
    """CoinCap does not know the asset id (404, or ``"data": null``)."""

    reason = "unknown_asset"


@dataclass(frozen=True, slots=True)
class Asset:
    slug: str
    symbol: str
    name: str
    rank: int | None
    price_usd: Decimal
    market_cap_usd: Decimal
    supply: Decimal
    max_supply: Decimal | None
    volume_usd_24h: Decimal | None
    change_percent_24h: Decimal | None
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    timestamp: datetime
    price_usd: Decimal


class PriceClient(Protocol):
    """What every price source answers: the asset now, and its price history."""

    name: str

    def asset(self, slug: str) -> Asset: ...

    def history(self, slug: str, *, interval: str, start: datetime, end: datetime) -> list[HistoryPoint]: ...


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(value: Any, *, what: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CoinCapUnexpectedResponse(f"{what} is not a millisecond timestamp: {value!r}")
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise CoinCapUnexpectedResponse(f"{what} is out of range: {value!r}") from exc


def to_decimal(value: Any, *, what: str, optional: bool = False) -> Decimal | None:
    if value is None and optional:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise CoinCapUnexpectedResponse(f"{what} is not a number string: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise CoinCapUnexpectedResponse(f"{what} is not a number: {value!r}") from exc
    if not number.is_finite():
        raise CoinCapUnexpectedResponse(f"{what} is not finite: {value!r}")
    return number


def _message_of(body: Any) -> str | None:
    """The text of a ``{"message": ...}`` object, at the top level or inside ``data``."""
    for candidate in (body, body.get("data") if isinstance(body, dict) else None):
        if isinstance(candidate, dict) and "message" in candidate and len(candidate) <= 2:
            return str(candidate["message"])
    return None


_sessions = threading.local()


def _session() -> requests.Session:
    """One pooled session per thread (requests sessions are not thread-safe to share)."""
    session = getattr(_sessions, "session", None)
    if session is None:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        _sessions.session = session
    return session


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(tz=UTC)).total_seconds())


class CoinCapClient:
    """The CoinCap v3 REST API over a pooled ``requests`` session.

    Retries timeouts, connection errors, 5xx and 429 with exponential backoff and
    jitter, waiting what ``Retry-After`` asks when it is at most
    ``COINCAP_RETRY_AFTER_MAX`` (a longer wait fails the call at once).
    """

    name = "coincap"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: tuple[float, float] | None = None,
        max_retries: int | None = None,
        backoff: float | None = None,
        retry_after_max: float | None = None,
    ) -> None:
        self.base_url = (base_url if base_url is not None else settings.COINCAP_BASE_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else settings.COINCAP_API_KEY
        self.timeout = timeout or (
            settings.COINCAP_CONNECT_TIMEOUT.total_seconds(),
            settings.COINCAP_READ_TIMEOUT.total_seconds(),
        )
        self.max_retries = settings.COINCAP_MAX_RETRIES if max_retries is None else max_retries
        self.backoff = settings.COINCAP_BACKOFF.total_seconds() if backoff is None else backoff
        self.retry_after_max = (
            settings.COINCAP_RETRY_AFTER_MAX.total_seconds() if retry_after_max is None else retry_after_max
        )

    # -- public calls -------------------------------------------------------------------

    def asset(self, slug: str) -> Asset:
        body = self._get(f"/assets/{slug}", params=None, slug=slug)
        data = self._data(body, slug=slug)
        if not isinstance(data, dict):
            raise CoinCapUnexpectedResponse(f"asset {slug!r}: 'data' is not an object: {type(data).__name__}")
        if data.get("id") not in (None, slug):
            raise CoinCapUnexpectedResponse(f"asset {slug!r}: CoinCap answered for {data.get('id')!r}")
        rank = data.get("rank")
        try:
            rank_value = int(str(rank)) if rank not in (None, "") else None
        except (TypeError, ValueError) as exc:
            raise CoinCapUnexpectedResponse(f"asset {slug!r}: rank is not an integer: {rank!r}") from exc
        price = to_decimal(data.get("priceUsd"), what=f"asset {slug!r} priceUsd")
        market_cap = to_decimal(data.get("marketCapUsd"), what=f"asset {slug!r} marketCapUsd")
        supply = to_decimal(data.get("supply"), what=f"asset {slug!r} supply")
        assert price is not None and market_cap is not None and supply is not None
        return Asset(
            slug=slug,
            symbol=str(data.get("symbol") or ""),
            name=str(data.get("name") or ""),
            rank=rank_value,
            price_usd=price,
            market_cap_usd=market_cap,
            supply=supply,
            max_supply=to_decimal(data.get("maxSupply"), what=f"asset {slug!r} maxSupply", optional=True),
            volume_usd_24h=to_decimal(data.get("volumeUsd24Hr"), what=f"asset {slug!r} volumeUsd24Hr", optional=True),
            change_percent_24h=to_decimal(
                data.get("changePercent24Hr"), what=f"asset {slug!r} changePercent24Hr", optional=True
            ),
            timestamp=from_ms(body.get("timestamp"), what=f"asset {slug!r} timestamp"),
        )

    def history(self, slug: str, *, interval: str, start: datetime, end: datetime) -> list[HistoryPoint]:
        """Points with ``start <= time < end``, ascending, one per instant."""
        if interval not in INTERVALS:
            raise ValueError(f"Unsupported interval {interval!r}")
        params = {"interval": interval, "start": to_ms(start), "end": to_ms(end)}
        body = self._get(f"/assets/{slug}/history", params=params, slug=slug)
        data = self._data(body, slug=slug)
        if not isinstance(data, list):
            raise CoinCapUnexpectedResponse(f"history of {slug!r}: 'data' is not a list: {type(data).__name__}")
        points: dict[datetime, Decimal] = {}
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                raise CoinCapUnexpectedResponse(f"history of {slug!r}: item {index} is not an object")
            moment = from_ms(item.get("time"), what=f"history of {slug!r} item {index} time")
            price = to_decimal(item.get("priceUsd"), what=f"history of {slug!r} item {index} priceUsd")
            assert price is not None
            if price < 0:
                raise CoinCapUnexpectedResponse(f"history of {slug!r}: item {index} has a negative price")
            if start <= moment < end:
                points[moment] = price
        return [HistoryPoint(timestamp=moment, price_usd=points[moment]) for moment in sorted(points)]

    # -- transport ----------------------------------------------------------------------

    def _data(self, body: Any, *, slug: str) -> Any:
        if not isinstance(body, dict):
            raise CoinCapUnexpectedResponse(f"{slug!r}: the body is not a JSON object")
        message = _message_of(body)
        if message is not None:
            raise CoinCapRetiredApi(f"CoinCap answered a message instead of data: {message}")
        if "data" not in body:
            raise CoinCapUnexpectedResponse(f"{slug!r}: the body has no 'data' member")
        if body["data"] is None:
            raise CoinCapUnknownAsset(f"CoinCap does not know the asset {slug!r}")
        return body["data"]

    def _get(self, path: str, *, params: dict[str, Any] | None, slug: str) -> Any:
        url = self.base_url + path
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempt = 0
        while True:
            attempt += 1
            failure: str
            wait: float | None = None
            try:
                response = _session().get(url, params=params, headers=headers, timeout=self.timeout)
            except requests.Timeout:
                failure = f"timed out after {self.timeout[1]:g}s"
            except requests.ConnectionError as exc:
                failure = f"connection failed: {type(exc).__name__}"
            else:
                status = response.status_code
                if status == 200:
                    return self._json(response, slug=slug)
                if status == 404:
                    raise CoinCapUnknownAsset(f"CoinCap does not know the asset {slug!r} (404)")
                if status in (401, 403):
                    raise CoinCapAuthError(f"CoinCap refused the API key ({status}); check COINCAP_API_KEY")
                if status == 429:
                    wait = _retry_after(response)
                    if wait is not None and wait > self.retry_after_max:
                        raise CoinCapRateLimited(
                            f"CoinCap asked to wait {wait:g}s (over COINCAP_RETRY_AFTER_MAX={self.retry_after_max:g}s)"
                        )
                    failure = "rate limited (429)"
                elif status >= 500:
                    failure = f"server error ({status})"
                    wait = _retry_after(response)
                    if wait is not None:
                        wait = min(wait, self.retry_after_max)
                else:
                    message = _message_of(self._json_or_none(response))
                    if message is not None:
                        raise CoinCapRetiredApi(f"CoinCap answered {status} with a message: {message}")
                    raise CoinCapUnexpectedResponse(f"CoinCap answered {status} for {path}")
            if attempt > self.max_retries:
                error = CoinCapRateLimited if failure.startswith("rate limited") else CoinCapUnavailable
                raise error(f"CoinCap {path}: {failure}; gave up after {attempt} attempts")
            if wait is None:
                wait = self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 4)
            logger.warning("CoinCap %s: %s; retry %d in %.2fs", path, failure, attempt, wait)
            time.sleep(wait)

    @staticmethod
    def _json_or_none(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    def _json(self, response: requests.Response, *, slug: str) -> Any:
        content_type = response.headers.get("Content-Type", "")
        if "json" not in content_type:
            kind = content_type.split(";")[0] or "no content type"
            raise CoinCapUnexpectedResponse(f"{slug!r}: CoinCap answered {kind}, not JSON")
        try:
            return response.json()
        except ValueError as exc:
            raise CoinCapUnexpectedResponse(f"{slug!r}: CoinCap answered malformed JSON") from exc
