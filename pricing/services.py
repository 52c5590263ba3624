"""Writes of the pricing context: price sync, on-demand fetch, monthly derivation, market caps.

Every write follows one rule: fetch and validate everything from the source first,
then store it in one transaction, so a failure never leaves a half-stored series.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.models import Dataset, Frequency
from core.errors import FieldError
from pricing.coincap import CoinCapError, CoinCapUnexpectedResponse, HistoryPoint, PriceClient
from pricing.models import MarketCapSnapshot, PriceCoverage, PricePoint, PriceSyncState
from pricing.selectors import (
    BASE_FREQUENCY,
    STEP,
    Range,
    coverage_ranges,
    month_floor,
    month_next,
    ranges_merge,
    ranges_missing,
)
from pricing.sources import price_client

logger = logging.getLogger(__name__)

INTERVAL: dict[str, str] = {Frequency.HOUR: "h1", Frequency.DAY: "d1"}
TINY = timedelta(microseconds=1)
# PricePoint.price_usd holds 20 integer digits and 18 decimal places.
PRICE_LIMIT = Decimal(10) ** 20
EIGHTEEN_PLACES = Decimal(10) ** -18


def _chunk(frequency: str) -> timedelta:
    chunk = settings.COINCAP_CHUNK_H1 if frequency == Frequency.HOUR else settings.COINCAP_CHUNK_D1
    return max(timedelta(days=1), chunk)


def _floor(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + step * ((moment - epoch) // step)


def _offers(dataset: Dataset, frequency: str) -> bool:
    return any(f.frequency == frequency for f in dataset.frequencies.all())


# -- fetching ------------------------------------------------------------------------------


def _history_fetch(
    *,
    client: PriceClient,
    dataset: Dataset,
    frequency: str,
    ranges: list[Range],
    earliest_stored: datetime | None,
    now: datetime,
) -> list[HistoryPoint]:
    """Every point of ``ranges`` from the source, in calls no longer than the chunk setting.

    An empty answer is an error where data was due: a chunk at least two intervals long
    that ends after the earliest stored point (or, with nothing stored, inside the
    backfill depth). Before an asset existed, an empty answer is simply the truth.
    """
    if not dataset.coincap_id:
        raise CoinCapUnexpectedResponse(f"{dataset.symbol} has no CoinCap id")
    step, chunk = STEP[frequency], _chunk(frequency)
    due_after = earliest_stored or now - settings.PRICE_BACKFILL
    points: list[HistoryPoint] = []
    for start, end in ranges:
        lo = start
        while lo < end:
            hi = min(lo + chunk, end)
            got = client.history(dataset.coincap_id, interval=INTERVAL[frequency], start=lo, end=hi)
            if not got and hi - lo >= 2 * step and hi > due_after:
                raise CoinCapUnexpectedResponse(
                    f"{dataset.coincap_id} {INTERVAL[frequency]}: an empty list for "
                    f"{lo:%Y-%m-%d %H:%M} to {hi:%Y-%m-%d %H:%M}, where data was due"
                )
            for point in got:
                if abs(point.price_usd) >= PRICE_LIMIT:
                    raise CoinCapUnexpectedResponse(
                        f"{dataset.coincap_id}: price {point.price_usd} at {point.timestamp:%Y-%m-%d %H:%M} is out of range"
                    )
            points.extend(got)
            lo = hi
    return points


# -- storing -------------------------------------------------------------------------------


def _sync_state_locked(*, dataset: Dataset, frequency: str) -> PriceSyncState:
    PriceSyncState.objects.get_or_create(dataset=dataset, frequency=frequency)
    return PriceSyncState.objects.select_for_update().get(dataset=dataset, frequency=frequency)


def _coverage_add(*, dataset: Dataset, frequency: str, ranges: list[Range]) -> None:
    ranges = [(lo, hi) for lo, hi in ranges if hi > lo]
    if not ranges:
        return
    merged = ranges_merge(coverage_ranges(dataset=dataset, frequency=frequency) + ranges)
    PriceCoverage.objects.filter(dataset=dataset, frequency=frequency).delete()
    PriceCoverage.objects.bulk_create(
        PriceCoverage(dataset=dataset, frequency=frequency, start=lo, end=hi) for lo, hi in merged
    )


def _points_upsert(
    *, dataset: Dataset, frequency: str, rows: Iterable[tuple[datetime, Decimal, str, bool]], now: datetime
) -> int:
    objs = [
        PricePoint(
            dataset=dataset,
            frequency=frequency,
            timestamp=moment,
            price_usd=price,
            source=source,
            is_partial=partial,
            updated_at=now,
        )
        for moment, price, source, partial in rows
    ]
    PricePoint.objects.bulk_create(
        objs,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["dataset", "frequency", "timestamp"],
        update_fields=["price_usd", "source", "is_partial", "updated_at"],
    )
    return len(objs)


def _state_success(state: PriceSyncState, *, source: str, stored: int, now: datetime) -> None:
    last = (
        PricePoint.objects.filter(dataset_id=state.dataset_id, frequency=state.frequency)
        .order_by("-timestamp")
        .values_list("timestamp", flat=True)
        .first()
    )
    state.last_point_at = last
    state.last_success_at = now
    state.last_attempt_at = now
    state.source = source
    state.points_stored = stored
    state.save()


def _sync_failed(*, dataset: Dataset, frequency: str, error: Exception, now: datetime) -> None:
    state, _ = PriceSyncState.objects.get_or_create(dataset=dataset, frequency=frequency)
    PriceSyncState.objects.filter(pk=state.pk).update(
        last_error=f"{type(error).__name__}: {error}"[:2000], last_error_at=now, last_attempt_at=now
    )


@transaction.atomic
def prices_store(
    *,
    dataset: Dataset,
    frequency: str,
    points: list[HistoryPoint],
    source: str,
    covered: list[Range],
    now: datetime | None = None,
) -> int:
    """Store validated points of one dataset frequency, mark ``covered`` as fetched and, for
    daily data of a dataset sold monthly, derive the months it touches, all at once."""
    now = now or timezone.now()
    state = _sync_state_locked(dataset=dataset, frequency=frequency)
    stored = _points_upsert(
        dataset=dataset, frequency=frequency, rows=((p.timestamp, p.price_usd, source, False) for p in points), now=now
    )
    _coverage_add(dataset=dataset, frequency=frequency, ranges=covered)
    _state_success(state, source=source, stored=stored, now=now)
    if frequency == Frequency.DAY and _offers(dataset, Frequency.MONTH):
        moments = [p.timestamp for p in points] + [lo for lo, _ in covered] + [hi - TINY for _, hi in covered]
        if moments:
            _months_derive(dataset=dataset, start=min(moments), end=max(moments), now=now)
    return stored


def _months_derive(*, dataset: Dataset, start: datetime, end: datetime, now: datetime) -> int:
    """Upsert the 1mo points of every month from ``start``'s to ``end``'s: the month's last
    daily price, stamped at the month's first instant; partial while the month is not over
    or its daily data does not reach its last day."""
    lo, hi = month_floor(start), month_next(end)
    daily = PricePoint.objects.filter(
        dataset=dataset, frequency=Frequency.DAY, timestamp__gte=lo, timestamp__lt=hi
    ).order_by("timestamp")
    closes: dict[datetime, tuple[datetime, Decimal, str]] = {}
    for moment, price, source in daily.values_list("timestamp", "price_usd", "source"):
        closes[month_floor(moment)] = (moment, price, source)
    rows = []
    for month, (last_day, price, source) in closes.items():
        month_end = month_next(month)
        partial = month_end > now or last_day < month_end - timedelta(days=1)
        rows.append((month, price, source, partial))
    state = _sync_state_locked(dataset=dataset, frequency=Frequency.MONTH)
    stored = _points_upsert(dataset=dataset, frequency=Frequency.MONTH, rows=rows, now=now)
    if rows:
        _state_success(state, source=rows[-1][2], stored=stored, now=now)
    return stored


@transaction.atomic
def price_monthly_derive(*, dataset: Dataset, months: int = 2, now: datetime | None = None) -> int:
    """Re-derive the last ``months`` months (the current one included) from stored daily data."""
    now = now or timezone.now()
    start = month_floor(now)
    for _ in range(max(0, months - 1)):
        start = month_floor(start - TINY)
    return _months_derive(dataset=dataset, start=start, end=now, now=now)


# -- sync and on-demand --------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    frequency: str
    start: datetime
    end: datetime
    stored: int


def price_sync(
    *, dataset: Dataset, frequency: str, client: PriceClient | None = None, now: datetime | None = None
) -> SyncResult:
    """Fetch a dataset frequency's new points: from where the stored series ends (the last
    stored point, or the end of what was fetched) to now, never from further back than
    ``PRICE_BACKFILL_DAYS`` (the depth of the first run). The last interval stays open, so
    a point the source publishes late is fetched by the next run."""
    frequency = BASE_FREQUENCY[Frequency(frequency)]
    client = client or price_client()
    now = now or timezone.now()
    step = STEP[frequency]
    covered = coverage_ranges(dataset=dataset, frequency=frequency)
    state = PriceSyncState.objects.filter(dataset=dataset, frequency=frequency).first()
    depth = _floor(now - settings.PRICE_BACKFILL, step)
    start = depth
    if covered:
        start = covered[-1][1]
        if state is not None and state.last_point_at is not None:
            start = min(start, state.last_point_at + TINY)
        # Older gaps (a series fetched on demand long ago, a sync down for months) are
        # fetched on demand; the sync keeps the recent past.
        start = max(start, depth)
    if start >= now:
        return SyncResult(frequency=frequency, start=start, end=now, stored=0)
    earliest = covered[0][0] if covered else None
    try:
        points = _history_fetch(
            client=client,
            dataset=dataset,
            frequency=frequency,
            ranges=[(start, now)],
            earliest_stored=earliest,
            now=now,
        )
        stored = prices_store(
            dataset=dataset,
            frequency=frequency,
            points=points,
            source=client.name,
            covered=[(start, min(now, _floor(now, step)))],
            now=now,
        )
    except CoinCapError as exc:
        _sync_failed(dataset=dataset, frequency=frequency, error=exc, now=now)
        raise
    return SyncResult(frequency=frequency, start=start, end=now, stored=stored)


@dataclass(frozen=True)
class EnsureResult:
    served_until: datetime
    fetched: int
    error: CoinCapError | None = None


def prices_ensure_stored(
    *,
    dataset: Dataset,
    frequency: str,
    start: datetime,
    end: datetime,
    client: PriceClient | None = None,
    now: datetime | None = None,
) -> EnsureResult:
    """Make sure ``[start, end)`` of a dataset frequency has been fetched, fetching what has
    not from the source now, at most ``PRICE_ON_DEMAND_MAX_POINTS`` intervals per call.

    The last interval before now is the periodic sync's job and never triggers a fetch.
    ``served_until`` is where stored data may be served up to: ``end``, or earlier when
    the cap stopped the fetch (the caller pages on from there). A source failure is
    returned, not raised, so the caller can still serve what is stored.
    """
    now = now or timezone.now()
    base = BASE_FREQUENCY[Frequency(frequency)]
    step = STEP[base]
    fetch_from = month_floor(start) if frequency == Frequency.MONTH else start
    check_end = min(end, _floor(now, step))
    if check_end <= fetch_from:
        return EnsureResult(served_until=end, fetched=0)
    covered = coverage_ranges(dataset=dataset, frequency=base)
    missing = ranges_missing(covered, fetch_from, check_end)
    if not missing:
        return EnsureResult(served_until=end, fetched=0)

    budget = step * max(1, settings.PRICE_ON_DEMAND_MAX_POINTS)
    wanted: list[Range] = []
    stopped_at: datetime | None = None
    for lo, hi in missing:
        take = min(hi, lo + budget)
        wanted.append((lo, take))
        budget -= take - lo
        if take < hi or budget <= timedelta(0):
            stopped_at = take
            break
    fetch = list(wanted)
    head = min(end, now)
    if stopped_at is None and fetch[-1][1] == check_end and check_end < head:
        # The open interval before now is fetched too (not marked covered: it may still change).
        fetch[-1] = (fetch[-1][0], head)
    client = client or price_client()
    try:
        points = _history_fetch(
            client=client,
            dataset=dataset,
            frequency=base,
            ranges=fetch,
            earliest_stored=covered[0][0] if covered else None,
            now=now,
        )
        fetched = prices_store(
            dataset=dataset, frequency=base, points=points, source=client.name, covered=wanted, now=now
        )
    except CoinCapError as exc:
        logger.warning("On-demand fetch of %s %s failed: %s", dataset.symbol, base, exc)
        _sync_failed(dataset=dataset, frequency=base, error=exc, now=now)
        return EnsureResult(served_until=end, fetched=0, error=exc)
    if stopped_at is None or stopped_at >= end:
        return EnsureResult(served_until=end, fetched=fetched)
    if frequency == Frequency.MONTH:
        stopped_at = month_floor(stopped_at)
    return EnsureResult(served_until=max(stopped_at, start), fetched=fetched)


# -- market caps ---------------------------------------------------------------------------


def market_cap_snapshot_store(
    *, dataset: Dataset, day: date | None = None, client: PriceClient | None = None, now: datetime | None = None
) -> MarketCapSnapshot:
    """Store (or update) a dataset's market cap for one UTC day, today by default.

    Today's comes from the source's asset endpoint as is. A past day's is estimated: that
    day's daily price times today's circulating supply, marked ``estimated``.
    """
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    day = day or today
    if day > today:
        raise FieldError("date", f"{day.isoformat()} is in the future (today is {today.isoformat()} UTC).")
    if not dataset.coincap_id:
        raise FieldError("dataset", f"{dataset.symbol} has no CoinCap id.")
    client = client or price_client()
    asset = client.asset(dataset.coincap_id)
    values: dict[str, object]
    if day == today:
        values = {
            "market_cap_usd": asset.market_cap_usd,
            "price_usd": asset.price_usd,
            "volume_usd_24h": asset.volume_usd_24h,
            "change_percent_24h": asset.change_percent_24h,
            "estimated": False,
            "source_timestamp": asset.timestamp,
        }
    else:
        day_start = datetime.combine(day, time(0), tzinfo=UTC)
        history = client.history(dataset.coincap_id, interval="d1", start=day_start, end=day_start + timedelta(days=1))
        if not history:
            raise CoinCapUnexpectedResponse(f"{dataset.coincap_id}: no daily price for {day.isoformat()}")
        price = history[-1].price_usd
        with localcontext() as ctx:
            ctx.prec = 60  # exact: the default 28 digits would round a 38-digit product
            estimate = (price * asset.supply).quantize(EIGHTEEN_PLACES)
        values = {
            "market_cap_usd": estimate,
            "price_usd": price,
            "volume_usd_24h": None,
            "change_percent_24h": None,
            "estimated": True,
            "source_timestamp": history[-1].timestamp,
        }
    for name in ("market_cap_usd", "price_usd"):
        if abs(values[name]) >= PRICE_LIMIT:  # type: ignore[arg-type]
            raise CoinCapUnexpectedResponse(f"{dataset.coincap_id}: {name} {values[name]} is out of range")
    if abs(asset.supply) >= PRICE_LIMIT:
        raise CoinCapUnexpectedResponse(f"{dataset.coincap_id}: supply {asset.supply} is out of range")
    snapshot = MarketCapSnapshot(
        dataset=dataset,
        date=day,
        supply=asset.supply,
        max_supply=asset.max_supply,
        rank=asset.rank,
        source=client.name,
        created_at=now,
        updated_at=now,
        **values,  # type: ignore[arg-type]
    )
    with transaction.atomic():
        MarketCapSnapshot.objects.bulk_create(
            [snapshot],
            update_conflicts=True,
            unique_fields=["dataset", "date"],
            update_fields=[
                "market_cap_usd",
                "price_usd",
                "supply",
                "max_supply",
                "volume_usd_24h",
                "change_percent_24h",
                "rank",
                "source",
                "estimated",
                "source_timestamp",
                "updated_at",
            ],
        )
    return MarketCapSnapshot.objects.get(dataset=dataset, date=day)
