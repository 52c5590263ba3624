"""Price pages kept per process: a repeated request of an unchanged series is not read again;
any write of the series through the services is served at once."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pricing import services
from pricing.coincap import HistoryPoint
from pricing.models import PricePoint, PriceSyncState
from pricing.selectors import PageKept, PricePage

pytestmark = pytest.mark.django_db

URL = "/api/v1/datasets/BTC/prices"
JAN_1 = {"frequency": "1h", "start": "2023-01-01T00:00:00Z", "end": "2023-01-01T04:00:00Z"}
NOON = datetime(2023, 1, 1, 1, tzinfo=UTC)


@pytest.fixture
def stored(entitled, coincap):
    coincap.add_series("bitcoin", "h1", {1672531200000: "100", 1672534800000: "101", 1672538400000: "102"})
    first = entitled.get(URL, JAN_1)
    assert [r["price_usd"] for r in first.json()["results"]] == ["100", "101", "102"]
    return entitled


def _prices(client, **params):
    response = client.get(URL, {**JAN_1, **params})
    assert response.status_code == 200, response.content
    if params.get("format") == "csv":
        return [line.split(",")[1] for line in response.content.decode().splitlines()[1:]]
    return [r["price_usd"] for r in response.json()["results"]]


def test_a_repeated_page_of_an_unchanged_series_is_not_read_again(stored):
    # A change no service made (so the series' version stays) is not seen: the page is the kept one.
    PricePoint.objects.filter(timestamp=NOON).update(price_usd=Decimal("999"))
    assert _prices(stored) == ["100", "101", "102"]
    # Another page (here another layout) is read from the points.
    assert _prices(stored, format="csv") == ["100", "999", "102"]


def test_pages_are_not_kept_nor_served_kept_when_the_budget_is_zero(stored, settings):
    settings.PRICE_PAGE_CACHE_BYTES = 0
    PricePoint.objects.filter(timestamp=NOON).update(price_usd=Decimal("999"))
    assert _prices(stored) == ["100", "999", "102"]  # the page kept before is not served
    assert _prices(stored, format="csv") == ["100", "999", "102"]
    PricePoint.objects.filter(timestamp=NOON).update(price_usd=Decimal("998"))
    assert _prices(stored, format="csv") == ["100", "998", "102"]


def test_a_write_of_the_series_through_the_services_is_served_at_once(stored, btc):
    state = PriceSyncState.objects.get(dataset=btc, frequency="1h")
    # The same instant as the last success: the row's version alone tells the pages apart.
    services.prices_store(
        dataset=btc,
        frequency="1h",
        points=[HistoryPoint(timestamp=NOON, price_usd=Decimal("101.5"))],
        source="coincap",
        covered=[],
        now=state.last_success_at,
    )
    assert _prices(stored) == ["100", "101.5", "102"]


def test_the_kept_page_carries_the_series_state_read_with_it(stored, btc):
    PriceSyncState.objects.filter(dataset=btc, frequency="1h").update(last_point_at=datetime(2023, 1, 1, 2, tzinfo=UTC))
    body = stored.get(URL, JAN_1).json()
    assert body["latest_point_at"] == "2023-01-01T02:00:00Z"
    assert [r["price_usd"] for r in body["results"]] == ["100", "101", "102"]


def _page(text: str) -> PricePage:
    return PricePage(text=text, count=1, last=None, sources=set(), has_more=False)


def test_pages_kept_stay_within_their_bytes_least_recently_used_first(settings):
    settings.PRICE_PAGE_CACHE_BYTES = 800
    kept = PageKept()
    for name in "abcd":
        kept.put((name,), "v1", _page(name * 100))
    assert kept.get(("a",)) is not None  # now the most recently used
    kept.put(("e",), "v1", _page("e" * 100))
    kept.put(("f",), "v1", _page("f" * 100))
    kept.put(("g",), "v1", _page("g" * 100))
    kept.put(("h",), "v1", _page("h" * 100))
    kept.put(("i",), "v1", _page("i" * 100))
    assert kept.get(("b",)) is None  # the least recently used went first
    assert kept.get(("a",)) is not None
    assert kept.size <= 800


def test_a_page_larger_than_an_eighth_of_the_budget_is_not_kept(settings):
    settings.PRICE_PAGE_CACHE_BYTES = 800
    kept = PageKept()
    kept.put(("big",), "v1", _page("x" * 101))
    kept.put(("small",), "v1", _page("x" * 100))
    assert kept.get(("big",)) is None
    assert kept.get(("small",)) is not None


def test_an_empty_page_is_not_kept_when_the_budget_is_zero(settings):
    settings.PRICE_PAGE_CACHE_BYTES = 0
    kept = PageKept()
    kept.put(("empty",), "v1", _page(""))
    settings.PRICE_PAGE_CACHE_BYTES = 800
    assert kept.get(("empty",)) is None
