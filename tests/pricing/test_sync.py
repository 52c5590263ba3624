"""Periodic price sync: first backfill, incremental runs, chunking, failures, idempotency."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from pricing import tasks
from pricing.coincap import CoinCapUnavailable, CoinCapUnexpectedResponse
from pricing.models import PriceCoverage, PricePoint, PriceSyncState

pytestmark = pytest.mark.django_db


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def test_first_sync_backfills_the_configured_depth_in_chunks(btc, coincap, settings):
    settings.PRICE_BACKFILL = timedelta(days=10)
    settings.COINCAP_CHUNK_H1 = timedelta(days=3)
    now = _hour(timezone.now())
    coincap.add_history("bitcoin", "h1", now - timedelta(days=20), now + timedelta(hours=1))

    stored = tasks.price_sync.apply(args=(btc.pk, "1h")).get()

    points = PricePoint.objects.filter(dataset=btc, frequency="1h")
    assert points.count() == stored
    oldest = points.order_by("timestamp").first()
    assert oldest is not None and oldest.timestamp >= now - timedelta(days=10, hours=1)
    assert 240 <= stored <= 242
    requests = coincap.history_requests()
    assert len(requests) == 4  # 10 days in chunks of 3
    for request in requests:
        assert request.query["interval"] == "h1"
        assert int(request.query["end"]) - int(request.query["start"]) <= 3 * 86_400_000
    state = PriceSyncState.objects.get(dataset=btc, frequency="1h")
    assert state.last_point_at == points.order_by("-timestamp").first().timestamp
    assert state.last_success_at is not None and state.last_error == ""
    assert state.source == "coincap"


def test_next_sync_continues_from_the_last_stored_point(btc, coincap, settings):
    settings.PRICE_BACKFILL = timedelta(days=2)
    now = _hour(timezone.now())
    coincap.add_history("bitcoin", "h1", now - timedelta(days=3), now - timedelta(hours=5))
    tasks.price_sync.apply(args=(btc.pk, "1h")).get()
    last = PricePoint.objects.filter(dataset=btc, frequency="1h").order_by("-timestamp").first().timestamp
    assert last == now - timedelta(hours=6)

    coincap.add_history("bitcoin", "h1", now - timedelta(hours=5), now + timedelta(hours=1))
    before = len(coincap.history_requests())
    stored = tasks.price_sync.apply(args=(btc.pk, "1h")).get()
    request = coincap.history_requests()[before]
    assert datetime.fromtimestamp(int(request.query["start"]) / 1000, tz=UTC) <= last + timedelta(seconds=1)
    assert datetime.fromtimestamp(int(request.query["start"]) / 1000, tz=UTC) > last - timedelta(seconds=1)
    assert stored == 6  # the five new hours before now and the current one
    assert PricePoint.objects.filter(dataset=btc, frequency="1h").order_by("-timestamp").first().timestamp == now


def test_sync_is_idempotent_and_updates_changed_prices(btc, coincap, settings):
    settings.PRICE_BACKFILL = timedelta(days=1)
    now = _hour(timezone.now())
    coincap.add_history("bitcoin", "h1", now - timedelta(days=2), now)
    tasks.price_sync.apply(args=(btc.pk, "1h")).get()
    count = PricePoint.objects.count()
    PriceCoverage.objects.all().delete()
    PriceSyncState.objects.all().delete()
    coincap.add_series("bitcoin", "h1", {int((now - timedelta(hours=1)).timestamp() * 1000): "1.5"})
    tasks.price_sync.apply(args=(btc.pk, "1h")).get()
    assert PricePoint.objects.count() == count
    assert PricePoint.objects.get(timestamp=now - timedelta(hours=1), frequency="1h").price_usd == Decimal("1.5")


def test_failed_sync_stores_nothing_and_records_the_error(btc, coincap, settings):
    settings.PRICE_BACKFILL = timedelta(days=6)
    settings.COINCAP_CHUNK_H1 = timedelta(days=2)
    now = _hour(timezone.now())
    coincap.add_history("bitcoin", "h1", now - timedelta(days=7), now)
    coincap.script(200, path="/history")
    coincap.script(200, path="/history", fixture="maintenance.html")
    with pytest.raises(CoinCapUnexpectedResponse):
        tasks.price_sync.apply(args=(btc.pk, "1h"), throw=True).get()
    assert not PricePoint.objects.exists()
    assert not PriceCoverage.objects.exists()
    state = PriceSyncState.objects.get(dataset=btc, frequency="1h")
    assert "text/html" in state.last_error
    assert state.last_error_at is not None and state.last_success_at is None


def test_unavailable_coincap_is_recorded_and_raised_for_a_retry(btc, coincap, settings):
    settings.PRICE_BACKFILL = timedelta(days=1)
    coincap.script(502, times=20)
    with pytest.raises(CoinCapUnavailable):
        from pricing import services

        services.price_sync(dataset=btc, frequency="1h")
    assert "502" in PriceSyncState.objects.get(dataset=btc, frequency="1h").last_error


def test_daily_fan_out_syncs_every_dataset_sold_daily(btc, eth, coincap, settings, eager_tasks):
    settings.PRICE_BACKFILL = timedelta(days=5)
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    coincap.add_history("bitcoin", "d1", today - timedelta(days=10), today + timedelta(days=1))
    coincap.add_history("ethereum", "d1", today - timedelta(days=10), today + timedelta(days=1))
    assert tasks.prices_sync.apply(kwargs={"frequency": "1d"}).get() == 2
    assert PricePoint.objects.filter(dataset=btc, frequency="1d").count() >= 5
    assert PricePoint.objects.filter(dataset=eth, frequency="1d").count() >= 5
    # BTC is sold monthly: its months are derived in the same write; ETH's are not.
    assert PricePoint.objects.filter(dataset=btc, frequency="1mo").exists()
    assert not PricePoint.objects.filter(dataset=eth, frequency="1mo").exists()


def test_concurrent_sync_of_the_same_series_is_skipped(btc, coincap, settings):
    from django.core.cache import cache

    cache.set(f"pricing:sync:{btc.pk}:1h", "1", 60)
    try:
        assert tasks.price_sync.apply(args=(btc.pk, "1h")).get() == 0
        assert coincap.history_requests() == []
    finally:
        cache.delete(f"pricing:sync:{btc.pk}:1h")


def test_sync_never_reaches_further_back_than_the_backfill_depth(btc, coincap, settings, entitled):
    settings.PRICE_BACKFILL = timedelta(days=2)
    coincap.add_history("bitcoin", "h1", datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC))
    params = {"frequency": "1h", "start": "2023-01-01T00:00:00Z", "end": "2023-01-02T00:00:00Z"}
    assert entitled.get("/api/v1/datasets/BTC/prices", params).json()["count"] == 24  # an old day, on demand
    before = len(coincap.history_requests())
    now = _hour(timezone.now())
    coincap.add_history("bitcoin", "h1", now - timedelta(days=3), now)
    tasks.price_sync.apply(args=(btc.pk, "1h")).get()
    first = coincap.history_requests()[before]
    assert int(first.query["start"]) >= int((now - timedelta(days=2, hours=1)).timestamp() * 1000)
