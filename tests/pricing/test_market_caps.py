"""Market caps: the daily 20:00 UTC backfill, its command, its endpoint and the dataset detail."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from entitlements.models import GrantStatus
from pricing import tasks
from pricing.models import MarketCapSnapshot
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/datasets/BTC/market-caps"


def _today() -> date:
    return timezone.now().astimezone(UTC).date()


def test_command_stores_todays_market_caps_from_the_asset_endpoint(btc, eth, coincap, capsys):
    call_command("backfill_market_caps")
    out = capsys.readouterr()
    assert "BTC" in out.out and "ETH" in out.out
    assert "market caps" in out.err  # the progress bar
    snapshot = MarketCapSnapshot.objects.get(dataset=btc, date=_today())
    assert snapshot.market_cap_usd == Decimal("1912345678901.2345678901234567")
    assert snapshot.price_usd == Decimal("96367.1234567890123456")
    assert snapshot.supply == Decimal("19844321")
    assert snapshot.source == "coincap" and not snapshot.estimated
    assert MarketCapSnapshot.objects.get(dataset=eth, date=_today()).max_supply is None
    assert {r.path for r in coincap.requests} == {"/v3/assets/bitcoin", "/v3/assets/ethereum"}


def test_command_is_idempotent_the_same_day_updates(btc, eth, coincap):
    call_command("backfill_market_caps")
    first = MarketCapSnapshot.objects.get(dataset=btc, date=_today())
    coincap.assets["bitcoin"] = {
        "id": "bitcoin",
        "rank": "1",
        "symbol": "BTC",
        "name": "Bitcoin",
        "supply": "19844400",
        "maxSupply": "21000000",
        "marketCapUsd": "2000000000000.5",
        "volumeUsd24Hr": "1",
        "priceUsd": "100000.25",
        "changePercent24Hr": "3.5",
    }
    call_command("backfill_market_caps")
    assert MarketCapSnapshot.objects.count() == 2
    again = MarketCapSnapshot.objects.get(dataset=btc, date=_today())
    assert again.pk == first.pk
    assert again.market_cap_usd == Decimal("2000000000000.5")
    assert again.created_at == first.created_at and again.updated_at > first.updated_at


def test_command_for_a_past_day_estimates_from_that_days_price(btc, coincap):
    call_command("backfill_market_caps", "--date", "2025-01-02", "--dataset", "btc")
    snapshot = MarketCapSnapshot.objects.get(dataset=btc, date=date(2025, 1, 2))
    assert snapshot.estimated
    assert snapshot.price_usd == Decimal("95860.6158125491006373")
    # 95860.6158125491006373 x 19844321, exactly (more digits than Python's default Decimal context keeps).
    assert snapshot.market_cap_usd == Decimal("1902288831441.9001813078857733")
    assert MarketCapSnapshot.objects.count() == 1


def test_command_refuses_a_future_day_and_a_malformed_one(btc, coincap):
    tomorrow = (_today() + timedelta(days=1)).isoformat()
    with pytest.raises(CommandError, match="future"):
        call_command("backfill_market_caps", "--date", tomorrow)
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("backfill_market_caps", "--date", "02/01/2025")
    assert not MarketCapSnapshot.objects.exists()


def test_command_with_coincap_down_fails_and_stores_nothing_for_that_dataset(btc, eth, coincap):
    coincap.script(503, times=3, path="/assets/bitcoin")
    with pytest.raises(CommandError, match="BTC"):
        call_command("backfill_market_caps")
    assert not MarketCapSnapshot.objects.filter(dataset=btc).exists()
    assert MarketCapSnapshot.objects.filter(dataset=eth).exists()


def test_command_with_the_retired_api_message_fails_clearly(btc, coincap):
    coincap.script(200, fixture="retired_v2_message.json", times=2)
    with pytest.raises(CommandError, match="deprecating"):
        call_command("backfill_market_caps", "--dataset", "BTC")
    assert not MarketCapSnapshot.objects.exists()


def test_scheduled_task_backfills_every_dataset(btc, eth, coincap, eager_tasks):
    assert tasks.market_caps_backfill.apply().get() == 2
    assert MarketCapSnapshot.objects.filter(date=_today()).count() == 2
    tasks.market_caps_backfill.apply().get()
    assert MarketCapSnapshot.objects.count() == 2


def test_synthetic_market_caps_are_labelled(btc, settings):
    settings.PRICE_SOURCE = "synthetic"
    call_command("backfill_market_caps", "--dataset", "BTC")
    snapshot = MarketCapSnapshot.objects.get(dataset=btc)
    assert snapshot.source == "synthetic"
    assert snapshot.market_cap_usd == (snapshot.price_usd * snapshot.supply).quantize(Decimal("0.00000001"))


# -- the endpoint --------------------------------------------------------------------------


def _snapshots(dataset, days: int) -> None:
    for offset in range(days):
        MarketCapSnapshot.objects.create(
            dataset=dataset,
            date=date(2025, 1, 1) + timedelta(days=offset),
            market_cap_usd=Decimal(f"{1000000000000 + offset}.000000000000000001"),
            price_usd=Decimal("50000.5"),
            supply=Decimal("19800000"),
            source="coincap",
            source_timestamp=datetime(2025, 1, 1, 20, tzinfo=UTC) + timedelta(days=offset),
        )


def test_any_grant_in_force_on_the_dataset_gives_market_caps(quant_client, btc):
    _snapshots(btc, 3)
    GrantFactory(account=quant_client.account, dataset=btc, frequency="1mo")
    response = quant_client.get(URL)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["date"] for r in results] == ["2025-01-01", "2025-01-02", "2025-01-03"]
    assert results[0]["market_cap_usd"] == "1000000000000.000000000000000001"
    assert results[0]["price_usd"] == "50000.5"


def test_market_caps_need_a_grant_in_force(quant_client, btc, eth, make_client):
    GrantFactory(account=quant_client.account, dataset=eth, frequency="1d")  # another dataset
    GrantFactory(
        account=quant_client.account, dataset=btc, frequency="1d", expires_at=timezone.now() - timedelta(minutes=1)
    )
    GrantFactory(account=quant_client.account, dataset=btc, frequency="1h", status=GrantStatus.REVOKED)
    response = quant_client.get(URL)
    assert response.status_code == 403
    assert response.json()["code"] == "not_entitled"
    assert make_client("ops").get(URL).status_code == 403
    from rest_framework.test import APIClient

    assert APIClient().get(URL).status_code == 401


def test_market_caps_range_and_pages(quant_client, btc):
    _snapshots(btc, 10)
    GrantFactory(account=quant_client.account, dataset=btc, frequency="1d")
    body = quant_client.get(URL, {"start": "2025-01-03", "end": "2025-01-08", "page_size": 2}).json()
    dates = [r["date"] for r in body["results"]]
    while body["next"]:
        body = quant_client.get(body["next"]).json()
        dates += [r["date"] for r in body["results"]]
    assert dates == ["2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06", "2025-01-07"]
    bad = quant_client.get(URL, {"start": "January"})
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["start"]


def test_dataset_detail_shows_the_latest_market_cap(anon_client, btc, eth, django_assert_num_queries):
    _snapshots(btc, 3)
    body = anon_client.get("/api/v1/datasets/BTC").json()
    assert body["latest_market_cap"] == {
        "date": "2025-01-03",
        "market_cap_usd": "1000000000002.000000000000000001",
        "price_usd": "50000.5",
        "supply": "19800000",
        "source": "coincap",
        "estimated": False,
    }
    assert anon_client.get("/api/v1/datasets/ETH").json()["latest_market_cap"] is None
    with django_assert_num_queries(3):
        listing = anon_client.get("/api/v1/datasets")
    assert {d["symbol"]: d["latest_market_cap"] is not None for d in listing.json()["results"]} == {
        "BTC": True,
        "ETH": False,
    }
