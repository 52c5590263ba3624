"""Reads of the pricing context: price windows, coverage, sync state, market caps."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, CharField, Func, OuterRef, QuerySet, Subquery
from django.shortcuts import get_object_or_404

from catalog.models import Dataset, Frequency
from catalog.selectors import datasets_with_frequencies
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


class _EpochMicros(Func):
    """PostgreSQL (14+): a timestamptz as integer microseconds since the epoch, exactly."""

    arity = 1
    output_field = BigIntegerField()
    template = "(extract(epoch from %(expressions)s) * 1000000)::bigint"


class _DecimalText(Func):
    """PostgreSQL: a numeric as exact text without trailing zeros (``trim_scale``)."""

    arity = 1
    output_field = CharField()
    template = "trim_scale(%(expressions)s)::text"


def iso_utc(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_EPOCH_DAY = date(1970, 1, 1)
_DAY_MICROS = 86_400_000_000
# Text of a day ("2025-01-01T") and of a whole-second time of day ("13:00:00Z"); bounded.
_day_texts: dict[int, str] = {}
_time_texts: dict[int, str] = {}


def _iso_from_micros_slow(micros: int) -> str:
    day, rest = divmod(micros, _DAY_MICROS)
    day_text = _day_texts.get(day)
    if day_text is None:
        day_text = (_EPOCH_DAY + timedelta(days=day)).isoformat() + "T"
        if len(_day_texts) < 100_000:
            _day_texts[day] = day_text
    seconds, fraction = divmod(rest, 1_000_000)
    time_text = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if fraction:
        return f"{day_text}{time_text}.{fraction:06d}Z"
    _time_texts[rest] = time_text + "Z"
    return day_text + time_text + "Z"


def iso_utc_from_micros(values: Iterable[int]) -> list[str]:
    """ISO 8601 UTC texts of epoch microseconds, the same as :func:`iso_utc`, fast for long
    series: the date and time-of-day parts are cached, since series repeat them."""
    out: list[str] = []
    append = out.append
    days, times = _day_texts, _time_texts
    for micros in values:
        day, rest = divmod(micros, _DAY_MICROS)
        try:
            append(days[day] + times[rest])
        except KeyError:
            append(_iso_from_micros_slow(micros))
    return out


def decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass
class PricePage:
    """One page of points as parallel columns of ready-to-write text, oldest first."""

    timestamps: list[str]
    prices: list[str]
    partial: list[bool]
    sources: set[str]
    has_more: bool

    def __len__(self) -> int:
        return len(self.timestamps)


def price_page(
    *, dataset_id: int, frequency: str, start: datetime, end: datetime, after: datetime | None, size: int
) -> PricePage:
    """Up to ``size`` points with ``start <= timestamp < end`` (and ``> after``), oldest first,
    as text ready to write (``"2025-01-01T00:00:00Z"``, ``"93429.23"``), and whether more follow.

    On PostgreSQL the database sends integers and text through a plain cursor, which spares
    a Python datetime and Decimal per row (Django's timestamptz loader is pure Python);
    elsewhere Python formats the same text from the model values."""
    qs = PricePoint.objects.filter(dataset_id=dataset_id, frequency=frequency, timestamp__gte=start, timestamp__lt=end)
    if after is not None:
        qs = qs.filter(timestamp__gt=after)
    qs = qs.order_by("timestamp")
    if connection.vendor == "postgresql":
        texts = qs.annotate(micros=_EpochMicros("timestamp"), price_text=_DecimalText("price_usd"))
        sql, params = texts.values_list("micros", "price_text", "source", "is_partial")[
            : size + 1
        ].query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        has_more = len(rows) > size
        if has_more:
            del rows[size:]
        return PricePage(
            timestamps=iso_utc_from_micros([row[0] for row in rows]),
            prices=[row[1] for row in rows],
            partial=[row[3] for row in rows],
            sources={row[2] for row in rows},
            has_more=has_more,
        )
    values = list(qs.values_list("timestamp", "price_usd", "source", "is_partial")[: size + 1])
    has_more = len(values) > size
    values = values[:size]
    return PricePage(
        timestamps=[iso_utc(row[0]) for row in values],
        prices=[decimal_text(row[1]) for row in values],
        partial=[row[3] for row in values],
        sources={row[2] for row in values},
        has_more=has_more,
    )


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


def dataset_list() -> QuerySet[Dataset]:
    """The public catalog listing: datasets with their frequencies and, in the same query, their latest market cap."""
    return datasets_with_frequencies().annotate(**market_cap_latest_annotations())


def dataset_detail_get(*, symbol: str) -> Dataset:
    """One dataset as the public listing shows it, or 404."""
    return get_object_or_404(dataset_list(), symbol=symbol.upper())


def sync_states_get(*, dataset: Dataset, frequencies: Collection[str]) -> dict[str, PriceSyncState]:
    """The sync state of each of ``frequencies`` that has one, by frequency."""
    return {
        state.frequency: state for state in PriceSyncState.objects.filter(dataset=dataset, frequency__in=frequencies)
    }
