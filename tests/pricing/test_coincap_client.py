"""The CoinCap client against a real local server that answers like CoinCap."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pricing.coincap import (
    CoinCapAuthError,
    CoinCapClient,
    CoinCapRateLimited,
    CoinCapRetiredApi,
    CoinCapUnavailable,
    CoinCapUnexpectedResponse,
    CoinCapUnknownAsset,
)

JAN1 = datetime(2025, 1, 1, tzinfo=UTC)
JAN4 = datetime(2025, 1, 4, tzinfo=UTC)


def test_asset_numbers_become_decimals_and_times_utc(coincap):
    asset = CoinCapClient().asset("bitcoin")
    assert asset.price_usd == Decimal("96367.1234567890123456")
    assert asset.market_cap_usd == Decimal("1912345678901.2345678901234567")
    assert asset.supply == Decimal("19844321.0000000000000000")
    assert asset.max_supply == Decimal("21000000")
    assert asset.rank == 1
    assert asset.timestamp == datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    request = coincap.requests[-1]
    assert request.path == "/v3/assets/bitcoin"
    assert request.headers["authorization"] == "Bearer test-coincap-key"


def test_null_max_supply_is_none(coincap):
    assert CoinCapClient().asset("ethereum").max_supply is None


def test_history_sends_ms_range_and_cuts_it_half_open(coincap):
    points = CoinCapClient().history("bitcoin", interval="d1", start=JAN1, end=datetime(2025, 1, 3, tzinfo=UTC))
    # The server answers end inclusively (3 points); the client keeps [start, end).
    assert [p.timestamp for p in points] == [JAN1, datetime(2025, 1, 2, tzinfo=UTC)]
    assert points[0].price_usd == Decimal("93429.2341781235521009")
    query = coincap.history_requests()[-1].query
    assert query == {"interval": "d1", "start": "1735689600000", "end": "1735862400000"}


def test_429_then_200_honours_retry_after(coincap):
    coincap.script(429, headers={"Retry-After": "1"})
    points = CoinCapClient().history("bitcoin", interval="d1", start=JAN1, end=JAN4)
    assert len(points) == 3
    first, second = coincap.history_requests()
    assert second.at - first.at >= 1.0


def test_retry_after_longer_than_the_cap_fails_at_once(coincap, settings):
    settings.COINCAP_RETRY_AFTER_MAX = timedelta(seconds=5)
    coincap.script(429, headers={"Retry-After": "120"})
    with pytest.raises(CoinCapRateLimited, match="120s"):
        CoinCapClient().asset("bitcoin")
    assert len(coincap.requests) == 1


def test_429_every_time_gives_up_rate_limited(coincap):
    coincap.script(429, times=3)
    with pytest.raises(CoinCapRateLimited):
        CoinCapClient().asset("bitcoin")
    assert len(coincap.requests) == 3  # first try + COINCAP_MAX_RETRIES


def test_500s_are_retried_then_succeed(coincap):
    coincap.script(500, times=2)
    assert CoinCapClient().asset("bitcoin").symbol == "BTC"
    assert len(coincap.requests) == 3


def test_500s_every_time_raise_unavailable(coincap):
    coincap.script(503, times=3)
    with pytest.raises(CoinCapUnavailable, match="gave up after 3 attempts"):
        CoinCapClient().asset("bitcoin")


def test_read_timeout_is_retried_then_unavailable(coincap, settings):
    settings.COINCAP_READ_TIMEOUT = timedelta(seconds=0.2)
    settings.COINCAP_MAX_RETRIES = 1
    coincap.script(200, delay=1.0, times=2)
    started = time.monotonic()
    with pytest.raises(CoinCapUnavailable, match="timed out"):
        CoinCapClient().asset("bitcoin")
    assert time.monotonic() - started < 1.5
    assert len(coincap.requests) == 2


def test_timeout_then_answer(coincap, settings):
    settings.COINCAP_READ_TIMEOUT = timedelta(seconds=0.2)
    coincap.script(200, delay=1.0)
    assert CoinCapClient().asset("bitcoin").symbol == "BTC"


def test_connection_refused_is_unavailable(settings):
    settings.COINCAP_BASE_URL = "http://127.0.0.1:9/v3"
    settings.COINCAP_MAX_RETRIES = 1
    settings.COINCAP_BACKOFF = timedelta(seconds=0.01)
    with pytest.raises(CoinCapUnavailable, match="connection failed"):
        CoinCapClient().asset("bitcoin")


def test_html_is_unexpected(coincap):
    coincap.script(200, fixture="maintenance.html")
    with pytest.raises(CoinCapUnexpectedResponse, match="text/html"):
        CoinCapClient().asset("bitcoin")


def test_message_object_instead_of_data(coincap):
    coincap.script(200, fixture="message_object.json")
    with pytest.raises(CoinCapRetiredApi, match="insufficient credits"):
        CoinCapClient().history("bitcoin", interval="h1", start=JAN1, end=JAN4)


def test_retired_api_message_inside_data(coincap):
    coincap.script(200, fixture="retired_v2_message.json")
    with pytest.raises(CoinCapRetiredApi, match="deprecating this version"):
        CoinCapClient().asset("bitcoin")


def test_unknown_asset_404(coincap):
    with pytest.raises(CoinCapUnknownAsset, match="notacoin"):
        CoinCapClient().asset("notacoin")


def test_null_data_is_unknown_asset(coincap):
    coincap.script(200, body={"data": None, "timestamp": 1736942400000})
    with pytest.raises(CoinCapUnknownAsset):
        CoinCapClient().asset("bitcoin")


def test_bad_number_in_history(coincap):
    coincap.script(200, fixture="bad_price.json")
    with pytest.raises(CoinCapUnexpectedResponse, match="not-a-number"):
        CoinCapClient().history("bitcoin", interval="d1", start=JAN1, end=JAN4)


def test_data_of_the_wrong_type(coincap):
    coincap.script(200, body={"data": {"priceUsd": "1"}, "timestamp": 1})
    with pytest.raises(CoinCapUnexpectedResponse, match="not a list"):
        CoinCapClient().history("bitcoin", interval="d1", start=JAN1, end=JAN4)


def test_refused_key_is_not_retried(coincap):
    coincap.script(401, body={"error": "Unauthorized"})
    with pytest.raises(CoinCapAuthError):
        CoinCapClient().asset("bitcoin")
    assert len(coincap.requests) == 1
