"""Reads of the pricing context: price windows, coverage, sync state, market caps."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery
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


def iso_utc(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass
class PricePage:
    """One page of points written out, oldest first: JSON array items (``{"timestamp":...}``
    joined by commas) or CSV lines, as the request asked."""

    text: str
    count: int
    last: datetime | None
    sources: set[str]
    has_more: bool
    # The series' sync state, read with the points: the last success of the series the
    # frequency is served from, and the newest stored point and source of its own.
    data_as_of: datetime | None = None
    latest_point_at: datetime | None = None
    series_source: str = ""

    def __len__(self) -> int:
        return self.count


# The texts of one point, the same on both paths: ``iso_utc`` and ``decimal_text`` in Python;
# on PostgreSQL ``trim_scale`` and the timestamp's JSON text (ISO 8601 whatever the DateStyle,
# its fraction trimmed), or ``to_char`` with all six digits of a fraction, as ``iso_utc`` has.
# Timestamps, decimal texts and flags never need JSON escaping or CSV quoting.
_POINT_JSON = '{{"timestamp":"{}","price_usd":"{}"}}'
_POINT_JSON_MONTHLY = '{{"timestamp":"{}","price_usd":"{}","partial":{}}}'
_POINT_CSV = "{},{}\n"
_POINT_CSV_MONTHLY = "{},{},{}\n"
_SQL_TIMESTAMP = (
    "CASE WHEN length(iso) = 21 THEN substr(iso, 2, 19) || 'Z' "
    'ELSE to_char("timestamp" AT TIME ZONE \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') END'
)
_SQL_POINT: dict[tuple[str, bool], str] = {
    ("json", False): f"""'{{"timestamp":"' || {_SQL_TIMESTAMP} || '","price_usd":"' || price || '"}}'""",
    ("json", True): (
        f"""'{{"timestamp":"' || {_SQL_TIMESTAMP} || '","price_usd":"' || price """
        """|| '","partial":' || is_partial::text || '}'"""
    ),
    ("csv", False): f"{_SQL_TIMESTAMP} || ',' || price || E'\\n'",
    ("csv", True): f"{_SQL_TIMESTAMP} || ',' || price || ',' || is_partial::text || E'\\n'",
}
_SEPARATOR = {"json": ",", "csv": ""}


class PageKept:
    """Written-out price pages this process has served, kept by the request that asked for
    them and the version of their series they were read at: a request for the same page of
    an unchanged series is answered without reading its points again.

    A series' version is the row version of its sync state (PostgreSQL's ``xmin``) with its
    last success: every write of a series' points updates that row in the same transaction
    (``pricing.services``), so a page kept at one version is the page any snapshot showing
    that version would read. Bounded by ``PRICE_PAGE_CACHE_BYTES`` of page text, the least
    recently used page going first; 0 keeps none."""

    def __init__(self) -> None:
        self._pages: OrderedDict[tuple[Any, ...], tuple[str, PricePage]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[str, PricePage] | None:
        if settings.PRICE_PAGE_CACHE_BYTES <= 0:
            return None
        with self._lock:
            kept = self._pages.get(key)
            if kept is not None:
                self._pages.move_to_end(key)
            return kept

    def put(self, key: tuple[Any, ...], version: str, page: PricePage) -> None:
        budget = settings.PRICE_PAGE_CACHE_BYTES
        if budget <= 0 or len(page.text) > budget // 8:  # a few large pages must not push out every other
            return
        with self._lock:
            replaced = self._pages.pop(key, None)
            if replaced is not None:
                self._size -= len(replaced[1].text)
            self._pages[key] = (version, page)
            self._size += len(page.text)
            while self._size > budget:
                _, (_, dropped) = self._pages.popitem(last=False)
                self._size -= len(dropped.text)

    @property
    def size(self) -> int:
        """Characters of page text kept."""
        return self._size

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
            self._size = 0


pages_kept = PageKept()


def price_page(
    *,
    dataset_id: int,
    frequency: str,
    start: datetime,
    end: datetime,
    after: datetime | None,
    size: int,
    layout: str = "json",
) -> PricePage:
    """Up to ``size`` points with ``start <= timestamp < end`` (and ``> after``), oldest first,
    written out for ``layout`` (``"json"`` or ``"csv"``; 1mo points carry ``partial``), and
    whether more follow, with the series' sync state.

    On PostgreSQL one statement reads the sync state and, unless this process keeps the page
    at the series' current version (``pages_kept``), writes the whole page as one text, so no
    Python object is made per point; elsewhere Python writes the same text from the model
    values."""
    monthly = frequency == Frequency.MONTH
    if connection.vendor == "postgresql":
        key = (connection.settings_dict["NAME"], dataset_id, frequency, start, end, after, size, layout)
        kept = pages_kept.get(key)
        table, sync_table = PricePoint._meta.db_table, PriceSyncState._meta.db_table
        series = 'dataset_id = %(dataset)s AND frequency = %(frequency)s AND "timestamp" < %(end)s'
        after_sql = ' AND "timestamp" > %(after)s' if after is not None else ""
        # Only constants are written into the statement; the values are parameters. The
        # points are read only when the series' version is not the kept page's: the
        # condition does not depend on a row, so PostgreSQL evaluates it once, first.
        sql = (
            f"WITH state AS (SELECT xmin::text || ' ' || coalesce(last_success_at::text, '') AS version, "  # noqa: S608
            f"last_point_at, source FROM {sync_table} WHERE dataset_id = %(dataset)s AND frequency = %(frequency)s), "
            'page AS (SELECT "timestamp", to_json("timestamp" AT TIME ZONE \'UTC\')::text AS iso, '
            f"trim_scale(price_usd)::text AS price, source, is_partial FROM {table} "
            f'WHERE {series} AND "timestamp" >= %(start)s{after_sql} '
            "AND NOT EXISTS (SELECT 1 FROM state WHERE version = %(known)s) "
            'ORDER BY "timestamp" LIMIT %(size)s) '
            "SELECT count, last, text, sources, "
            f'EXISTS (SELECT 1 FROM {table} WHERE {series} AND "timestamp" > last), '
            f"(SELECT last_success_at FROM {sync_table} WHERE dataset_id = %(dataset)s AND frequency = %(base)s), "
            "(SELECT last_point_at FROM state), (SELECT source FROM state), (SELECT version FROM state) "
            'FROM (SELECT count(*) AS count, max("timestamp") AS last, array_agg(DISTINCT source) AS sources, '
            f'string_agg({_SQL_POINT[(layout, monthly)]}, %(separator)s ORDER BY "timestamp") AS text FROM page) p'
        )
        params: dict[str, Any] = {
            "dataset": dataset_id,
            "frequency": frequency,
            "base": BASE_FREQUENCY[frequency],
            "start": start,
            "end": end,
            "after": after,
            "size": size,
            "separator": _SEPARATOR[layout],
            "known": kept[0] if kept is not None else None,
        }
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            count, last, text, sources, has_more, data_as_of, latest_point_at, series_source, version = (
                cursor.fetchone()
            )
        state = {"data_as_of": data_as_of, "latest_point_at": latest_point_at, "series_source": series_source or ""}
        if kept is not None and version == kept[0]:
            return dataclasses.replace(kept[1], **state)
        page = PricePage(
            text=text or "",
            count=count,
            last=last,
            sources=set(sources or ()),
            has_more=has_more,
            **state,
        )
        if version is not None:
            pages_kept.put(key, version, page)
        return page
    qs = PricePoint.objects.filter(dataset_id=dataset_id, frequency=frequency, timestamp__gte=start, timestamp__lt=end)
    if after is not None:
        qs = qs.filter(timestamp__gt=after)
    values = list(qs.order_by("timestamp").values_list("timestamp", "price_usd", "source", "is_partial")[: size + 1])
    has_more = len(values) > size
    values = values[:size]
    states = {
        state.frequency: state
        for state in PriceSyncState.objects.filter(
            dataset_id=dataset_id, frequency__in={frequency, BASE_FREQUENCY[frequency]}
        )
    }
    base_state, own_state = states.get(BASE_FREQUENCY[frequency]), states.get(frequency)
    if layout == "csv":
        template = _POINT_CSV_MONTHLY if monthly else _POINT_CSV
    else:
        template = _POINT_JSON_MONTHLY if monthly else _POINT_JSON
    return PricePage(
        text=_SEPARATOR[layout].join(
            template.format(iso_utc(moment), decimal_text(price), "true" if partial else "false")
            for moment, price, _, partial in values
        ),
        count=len(values),
        last=values[-1][0] if values else None,
        sources={row[2] for row in values},
        has_more=has_more,
        data_as_of=base_state.last_success_at if base_state else None,
        latest_point_at=own_state.last_point_at if own_state else None,
        series_source=own_state.source if own_state else "",
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
