"""Where prices come from: CoinCap, or a deterministic offline source for demos.

Both answer the same protocol (:class:`pricing.coincap.PriceClient`: ``asset`` and
``history``), so the sync, the on-demand fetch and the market-cap backfill never know
which one they talk to; every stored row records its source's ``name``.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from pricing.coincap import Asset, CoinCapClient, HistoryPoint, PriceClient

INTERVAL_STEP = {"h1": timedelta(hours=1), "d1": timedelta(days=1)}
_EIGHT_PLACES = Decimal("0.00000001")
_KNOWN = {
    # slug: (symbol, name, typical price, circulating supply, max supply)
    "bitcoin": ("BTC", "Bitcoin", 60000.0, Decimal("19700000"), Decimal("21000000")),
    "ethereum": ("ETH", "Ethereum", 3000.0, Decimal("120000000"), None),
}


def _unit(*parts: object) -> float:
    """A number in [0, 1) that depends only on ``parts``."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class SyntheticClient:
    """Deterministic, offline prices: the same asset and instant always give the same price.

    A smooth curve (yearly, monthly and daily waves around a typical price) plus a small
    hash-based wobble, rounded to 8 decimal places. For demos and the embedded mode;
    its data is labelled ``synthetic`` wherever it shows.
    """

    name = "synthetic"

    def __init__(self, *, now: datetime | None = None) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now or timezone.now()

    def _profile(self, slug: str) -> tuple[str, str, float, Decimal, Decimal | None]:
        if slug in _KNOWN:
            return _KNOWN[slug]
        base = 1 + 999 * _unit(slug, "base")
        supply = Decimal(int(1_000_000 + 999_000_000 * _unit(slug, "supply")))
        return slug[:8].upper(), slug.replace("-", " ").title(), base, supply, None

    def price_at(self, slug: str, moment: datetime) -> Decimal:
        base = self._profile(slug)[2]
        seconds = moment.timestamp()
        phase = 2 * math.pi * _unit(slug, "phase")
        wave = (
            0.25 * math.sin(2 * math.pi * seconds / (365.25 * 86400) + phase)
            + 0.08 * math.sin(2 * math.pi * seconds / (29.5 * 86400) + 2 * phase)
            + 0.015 * math.sin(2 * math.pi * seconds / 86400 + 3 * phase)
        )
        wobble = (_unit(slug, int(seconds)) - 0.5) * 0.01
        return Decimal(repr(base * (1 + wave + wobble))).quantize(_EIGHT_PLACES)

    def asset(self, slug: str) -> Asset:
        symbol, name, _, supply, max_supply = self._profile(slug)
        now = self.now()
        price = self.price_at(slug, now)
        day_ago = self.price_at(slug, now - timedelta(days=1))
        return Asset(
            slug=slug,
            symbol=symbol,
            name=name,
            rank=None,
            price_usd=price,
            market_cap_usd=(price * supply).quantize(_EIGHT_PLACES),
            supply=supply,
            max_supply=max_supply,
            volume_usd_24h=(price * supply * Decimal("0.02")).quantize(_EIGHT_PLACES),
            change_percent_24h=((price - day_ago) / day_ago * 100).quantize(_EIGHT_PLACES),
            timestamp=now,
        )

    def history(self, slug: str, *, interval: str, start: datetime, end: datetime) -> list[HistoryPoint]:
        step = INTERVAL_STEP[interval]
        end = min(end, self.now())
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        first = epoch + step * math.ceil((start - epoch) / step)
        points = []
        moment = first
        while moment < end:
            points.append(HistoryPoint(timestamp=moment, price_usd=self.price_at(slug, moment)))
            moment += step
        return points


def price_client() -> PriceClient:
    """The configured source (``PRICE_SOURCE``): ``coincap`` or ``synthetic``."""
    if settings.PRICE_SOURCE == "synthetic":
        return SyntheticClient()
    if settings.PRICE_SOURCE == "coincap":
        return CoinCapClient()
    raise ValueError(f"Unknown PRICE_SOURCE {settings.PRICE_SOURCE!r}: expected 'coincap' or 'synthetic'")
