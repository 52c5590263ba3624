"""Reads of the pricing context: price windows, coverage, sync state, market caps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from catalog.models import Dataset, Frequency
from pricing.models import MarketCapSnapshot, PriceCoverage, PricePoint, PriceSyncState

STEP: dict[str, timedelta] = {Frequency.HOUR: timedelta(hours=1), Frequency.DAY: timedelta(days=1)}
# The stored series a frequency is served from or derived from.
BASE_FREQUENCY: dict[str, str] = {
    Frequency.HOUR: Frequency.HOUR,
    Frequency.DAY: Frequency.DAY,
    Frequency.MONTH: Frequency.DAY,
}

Range = tuple[datetime, datetime]


def month_floor(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def month_next(moment: datetime) -> datetime:
    start = month_floor(moment)
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def coverage_ranges(*, dataset: Dataset, frequency: str) -> list[Range]:
    return list(
        PriceCoverage.objects.filter(dataset=dataset, frequency=frequency).order_by("start").values_list("start", "end")
    )


def ranges_missing(covered: list[Range], start: datetime, end: datetime) -> list[Range]:
    """The parts of ``[start, end)`` that no range of ``covered`` (sorted, disjoint) contains."""
    missing: list[Range] = []
    cursor = start
    for lo, hi in covered:
        if hi <= cursor:
            continue
        if lo >= end:
            break
        if lo > cursor:
            missing.append((cursor, lo))
        cursor = max(cursor, hi)
        if cursor >= end:
            break
    if cursor < end:
        missing.append((cursor, end))
    return missing


def ranges_merge(ranges: list[Range]) -> list[Range]:
    """Sorted, disjoint union of ``ranges``; touching ranges are joined."""
    merged: list[list[datetime]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def price_rows(
    *, dataset_id: int, frequency: str, start: datetime, end: datetime, after: datetime | None, limit: int
) -> list[tuple[datetime, Decimal, str, bool]]:
    """Up to ``limit`` points ``(timestamp, price_usd, source, is_partial)`` with
    ``start <= timestamp < end`` (and ``> after``), oldest first, as plain tuples."""
    qs = PricePoint.objects.filter(dataset_id=dataset_id, frequency=frequency, timestamp__gte=start, timestamp__lt=end)
    if after is not None:
        qs = qs.filter(timestamp__gt=after)
    return list(qs.order_by("timestamp").values_list("timestamp", "price_usd", "source", "is_partial")[:limit])


def sync_state_get(*, dataset_id: int, frequency: str) -> PriceSyncState | None:
    return PriceSyncState.objects.filter(dataset_id=dataset_id, frequency=frequency).first()


def sync_states_for(*, dataset: Dataset) -> list[PriceSyncState]:
    return list(PriceSyncState.objects.filter(dataset=dataset).order_by("frequency"))


def price_chart_points(*, dataset: Dataset, days: int, now: datetime) -> tuple[str, list]:
    """The points the admin chart shows, ``(timestamp, price_usd, source)``: the last ``days``
    of the dataset's daily series (hourly, then monthly, when it has no daily one), oldest first."""
    frequencies = set(PricePoint.objects.filter(dataset=dataset).values_list("frequency", flat=True).distinct())
    frequency = next((f for f in (Frequency.DAY, Frequency.HOUR, Frequency.MONTH) if f in frequencies), Frequency.DAY)
    rows = list(
        PricePoint.objects.filter(dataset=dataset, frequency=frequency, timestamp__gte=now - timedelta(days=days))
        .order_by("timestamp")
        .values_list("timestamp", "price_usd", "source")
    )
    return frequency, rows


def market_cap_list(
    *, dataset: Dataset, start: date | None = None, end: date | None = None
) -> QuerySet[MarketCapSnapshot]:
    qs = MarketCapSnapshot.objects.filter(dataset=dataset)
    if start is not None:
        qs = qs.filter(date__gte=start)
    if end is not None:
        qs = qs.filter(date__lt=end)
    return qs


def market_cap_latest_annotations() -> dict[str, Any]:
    """Annotations that put a dataset's latest market-cap snapshot on it, in the same query
    (``latest_market_cap_date``, ``_usd``, ``_price_usd``, ``_supply``, ``_source``, ``_estimated``)."""
    latest = MarketCapSnapshot.objects.filter(dataset=OuterRef("pk")).order_by("-date")
    fields = {
        "date": "date",
        "usd": "market_cap_usd",
        "price_usd": "price_usd",
        "supply": "supply",
        "source": "source",
        "estimated": "estimated",
    }
    return {f"latest_market_cap_{name}": Subquery(latest.values(field)[:1]) for name, field in fields.items()}
