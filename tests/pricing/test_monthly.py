"""1mo is derived from daily prices: the month's last daily price, at the month's first instant."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from pricing import services, tasks
from pricing.coincap import HistoryPoint
from pricing.models import PricePoint

pytestmark = pytest.mark.django_db

URL = "/api/v1/datasets/BTC/prices"


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def _daily(coincap, days: dict[tuple[int, int, int], str]) -> None:
    coincap.add_series("bitcoin", "d1", {_ms(*day): price for day, price in days.items()})


def test_month_close_across_boundaries(entitled, coincap):
    _daily(
        coincap,
        {
            (2024, 1, 30): "41000.1",
            (2024, 1, 31): "42000.123456789012345678",  # January's close
            (2024, 2, 1): "43000",
            (2024, 2, 28): "44000",
            (2024, 2, 29): "45000.5",  # leap day: February's close
            (2024, 3, 1): "46000",
            (2024, 3, 30): "47000",  # no March 31st: March stays partial
        },
    )
    body = entitled.get(
        URL, {"frequency": "1mo", "start": "2024-01-01T00:00:00Z", "end": "2024-04-01T00:00:00Z"}
    ).json()
    assert body["results"] == [
        {"timestamp": "2024-01-01T00:00:00Z", "price_usd": "42000.123456789012345678", "partial": False},
        {"timestamp": "2024-02-01T00:00:00Z", "price_usd": "45000.5", "partial": False},
        {"timestamp": "2024-03-01T00:00:00Z", "price_usd": "47000", "partial": True},
    ]
    # The daily data came from CoinCap on demand, once, and stays stored as 1d.
    assert PricePoint.objects.filter(frequency="1d").count() == 7


def test_a_start_inside_a_month_still_gets_that_months_point(entitled, coincap):
    _daily(coincap, {(2024, 1, 2): "1", (2024, 1, 31): "2", (2024, 2, 29): "3"})
    body = entitled.get(
        URL, {"frequency": "1mo", "start": "2024-01-15T00:00:00Z", "end": "2024-03-01T00:00:00Z"}
    ).json()
    # Points are stamped at the month's first instant, so start=Jan 15 excludes January's.
    assert [r["timestamp"] for r in body["results"]] == ["2024-02-01T00:00:00Z"]
    assert body["results"][0]["price_usd"] == "3"


def test_current_month_is_partial(entitled, settings):
    settings.PRICE_SOURCE = "synthetic"
    now = timezone.now()
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    start = (month - timedelta(days=1)).replace(day=1)
    body = entitled.get(URL, {"frequency": "1mo", "start": start.isoformat()}).json()
    results = body["results"]
    assert [r["timestamp"] for r in results][-1] == month.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert results[-1]["partial"] is True
    assert all(r["partial"] is False for r in results[:-1])
    assert len(results) == 2


def test_monthly_csv_has_a_partial_column(entitled, settings):
    settings.PRICE_SOURCE = "synthetic"
    response = entitled.get(
        URL, {"frequency": "1mo", "start": "2024-01-01T00:00:00Z", "end": "2024-03-01T00:00:00Z", "format": "csv"}
    )
    lines = response.content.decode().splitlines()
    assert lines[0] == "timestamp,price_usd,partial"
    assert [line.split(",")[0] for line in lines[1:]] == ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"]
    assert all(line.endswith(",false") for line in lines[1:])


def test_a_late_last_day_turns_the_month_final(entitled, coincap, btc):
    _daily(coincap, {(2024, 5, 30): "10"})
    params = {"frequency": "1mo", "start": "2024-05-01T00:00:00Z", "end": "2024-06-01T00:00:00Z"}
    assert entitled.get(URL, params).json()["results"][0] == {
        "timestamp": "2024-05-01T00:00:00Z",
        "price_usd": "10",
        "partial": True,
    }
    # The daily sync stores May 31st later on; the derivation runs in the same write.
    services.prices_store(
        dataset=btc,
        frequency="1d",
        points=[HistoryPoint(timestamp=datetime(2024, 5, 31, tzinfo=UTC), price_usd=Decimal("11"))],
        source="coincap",
        covered=[],
    )
    assert entitled.get(URL, params).json()["results"][0] == {
        "timestamp": "2024-05-01T00:00:00Z",
        "price_usd": "11",
        "partial": False,
    }


def test_monthly_derivation_task_rederives_recent_months(btc, settings):
    settings.PRICE_SOURCE = "synthetic"
    services.price_sync(dataset=btc, frequency="1d")
    PricePoint.objects.filter(frequency="1mo").delete()
    assert tasks.prices_derive_monthly.apply().get() == 2
    now = timezone.now()
    current = PricePoint.objects.get(frequency="1mo", timestamp=datetime(now.year, now.month, 1, tzinfo=UTC))
    assert current.is_partial
    last_daily = PricePoint.objects.filter(frequency="1d").order_by("-timestamp").first()
    assert current.price_usd == last_daily.price_usd
