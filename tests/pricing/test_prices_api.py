"""GET /api/v1/datasets/{symbol}/prices: entitlements, ranges, pages, formats, on-demand fetch."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from accounts.models import Role
from entitlements.models import GrantStatus
from pricing.models import PriceCoverage, PricePoint, PriceSyncState
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/datasets/BTC/prices"
Y2023 = {"start": "2023-01-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"}
JAN_2023 = {"start": "2023-01-01T00:00:00Z", "end": "2023-01-02T00:00:00Z"}


def _year_2023(coincap):
    return coincap.add_history("bitcoin", "h1", datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))


def _pages(client, url, params=None, **headers):
    """Every page of a listing, following `next` as given."""
    pages = []
    response = client.get(url, params or {}, **headers)
    while True:
        assert response.status_code == 200, response.content
        pages.append(response)
        next_url = response.json()["next"]
        if not next_url:
            return pages
        response = client.get(next_url, **headers)


# -- entitlements -----------------------------------------------------------------------


@pytest.fixture
def synthetic(settings):
    settings.PRICE_SOURCE = "synthetic"


def test_no_key_is_401(anon_client, btc, synthetic):
    response = anon_client.get(URL, {"frequency": "1d"})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("role", [Role.OPS, Role.SELLER, Role.BUYER])
def test_other_roles_are_403(make_client, btc, synthetic, role):
    response = make_client(role).get(URL, {"frequency": "1d"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_quant_without_grant_is_not_entitled(quant_client, btc, synthetic):
    response = quant_client.get(URL, {"frequency": "1d", **JAN_2023})
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "not_entitled"
    assert response["Content-Type"] == "application/problem+json"
    assert not PricePoint.objects.exists()  # nothing fetched for someone not entitled


def test_grant_at_another_frequency_is_not_entitled(quant_client, btc, synthetic):
    GrantFactory(account=quant_client.account, dataset=btc, frequency="1d")
    assert quant_client.get(URL, {"frequency": "1d", **JAN_2023}).status_code == 200
    response = quant_client.get(URL, {"frequency": "1h", **JAN_2023})
    assert response.status_code == 403
    assert response.json()["code"] == "not_entitled"


def test_expired_grant_refused_even_before_it_is_marked(quant_client, btc, synthetic):
    GrantFactory(
        account=quant_client.account, dataset=btc, frequency="1d", expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = quant_client.get(URL, {"frequency": "1d", **JAN_2023})
    assert response.status_code == 403
    assert response.json()["code"] == "not_entitled"


def test_expired_grant_refused(quant_client, btc, synthetic):
    GrantFactory(
        account=quant_client.account,
        dataset=btc,
        frequency="1d",
        status=GrantStatus.EXPIRED,
        expires_at=timezone.now() - timedelta(days=1),
    )
    assert quant_client.get(URL, {"frequency": "1d", **JAN_2023}).json()["code"] == "not_entitled"


def test_revoked_grant_refused(quant_client, btc, synthetic):
    GrantFactory(
        account=quant_client.account, dataset=btc, frequency="1d", status=GrantStatus.REVOKED, revoked_at=timezone.now()
    )
    response = quant_client.get(URL, {"frequency": "1d", **JAN_2023})
    assert response.status_code == 403
    assert response.json()["code"] == "not_entitled"


def test_active_grant_and_trial_before_expiry_are_served(quant_client, btc, synthetic):
    GrantFactory(account=quant_client.account, dataset=btc, frequency="1d")
    GrantFactory(
        account=quant_client.account, dataset=btc, frequency="1h", expires_at=timezone.now() + timedelta(hours=1)
    )
    daily = quant_client.get(URL, {"frequency": "1d", **JAN_2023})
    hourly = quant_client.get(URL, {"frequency": "1h", **JAN_2023})
    assert daily.status_code == 200 and hourly.status_code == 200
    assert daily.json()["count"] == 1
    assert hourly.json()["count"] == 24


def test_unknown_dataset_404(entitled, synthetic):
    response = entitled.get("/api/v1/datasets/DOGE/prices", {"frequency": "1d"})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# -- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "frequency"),
        ({"frequency": "5m"}, "frequency"),
        ({"frequency": "1h", "end": "yesterday"}, "end"),
        ({"frequency": "1h", "end": "0001-01-01T00:00:00+05:00"}, "end"),
        ({"frequency": "1h", "start": "9999-12-31T23:59:59Z"}, "start"),
        ({"frequency": "1h", "start": "2024-02-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, "start"),
        (
            {"frequency": "1h", "start": "2024-02-01T00:00:00Z", "end": "2024-01-01T00:00:00Z", "page_size": "0"},
            "start",
        ),
        ({"frequency": "1h", "start": "2024-02-01T00:00:00Z", "end": "2024-01-01T00:00:00Z", "cursor": "!"}, "start"),
        ({"frequency": "1h", "page_size": "0"}, "page_size"),
        ({"frequency": "1h", "page_size": "10001"}, "page_size"),
        ({"frequency": "1h", "page_size": "ten"}, "page_size"),
        ({"frequency": "1h", "cursor": "!!not-a-cursor!!"}, "cursor"),
        ({"frequency": "1h", "cursor": "OTk5OS0xMi0zMVQyMzo1OTo1OS45OTk5OTla"}, "cursor"),
        ({"frequency": "1h", "format": "xml"}, "format"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(entitled, synthetic, params, field):
    response = entitled.get(URL, params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["errors"]) == [field]


def test_offsets_are_converted_to_utc_and_plus_survives_unencoded(entitled, synthetic):
    response = entitled.get(URL + "?frequency=1h&start=2023-01-01T02:00:00+02:00&end=2023-01-01T03:00:00%2B02:00")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["start"] == "2023-01-01T00:00:00Z"
    assert [r["timestamp"] for r in body["results"]] == ["2023-01-01T00:00:00Z"]


def test_defaults_end_now_and_a_window_per_frequency(entitled, synthetic):
    before = timezone.now()
    body = entitled.get(URL, {"frequency": "1h"}).json()
    end = datetime.fromisoformat(body["end"])
    start = datetime.fromisoformat(body["start"])
    assert before <= end <= timezone.now()
    assert end - start == timedelta(days=30)
    daily = entitled.get(URL, {"frequency": "1d"}).json()
    assert datetime.fromisoformat(daily["end"]) - datetime.fromisoformat(daily["start"]) == timedelta(days=365)


# -- pages and formats -------------------------------------------------------------------


def test_a_year_of_hourly_points_comes_back_whole_across_pages(entitled, coincap, settings):
    settings.COINCAP_CHUNK_H1 = timedelta(days=30)
    assert _year_2023(coincap) == 8760
    pages = _pages(entitled, URL, {"frequency": "1h", "page_size": 1000, **Y2023})
    stamps = [r["timestamp"] for page in pages for r in page.json()["results"]]
    assert len(stamps) == 8760
    assert len(set(stamps)) == 8760 and stamps == sorted(stamps)
    assert stamps[0] == "2023-01-01T00:00:00Z" and stamps[-1] == "2023-12-31T23:00:00Z"
    assert len(pages) >= 9
    # Fetched on demand, at most PRICE_ON_DEMAND_MAX_POINTS per request, in chunks of 30 days.
    assert PricePoint.objects.filter(frequency="1h").count() == 8760
    for request in coincap.history_requests():
        assert int(request.query["end"]) - int(request.query["start"]) <= 30 * 86_400_000
    fetched = len(coincap.history_requests())

    # Stored now: one request of page_size=10000 carries the year, and nothing is fetched again.
    whole = entitled.get(URL, {"frequency": "1h", "page_size": 10000, **Y2023}).json()
    assert whole["count"] == 8760 and whole["next"] is None
    assert len(coincap.history_requests()) == fetched


def test_on_demand_fetch_is_capped_and_the_next_page_continues(entitled, coincap, settings):
    settings.PRICE_ON_DEMAND_MAX_POINTS = 48
    _year_2023(coincap)
    body = entitled.get(URL, {"frequency": "1h", "page_size": 10000, **Y2023}).json()
    assert body["count"] == 48
    assert body["results"][-1]["timestamp"] == "2023-01-02T23:00:00Z"
    assert body["next"]
    assert PricePoint.objects.filter(frequency="1h").count() == 48
    second = entitled.get(body["next"]).json()
    assert second["results"][0]["timestamp"] == "2023-01-03T00:00:00Z"
    assert second["count"] == 48


def test_cursor_pages_do_not_overlap_and_keep_the_range(entitled, synthetic):
    first = entitled.get(URL, {"frequency": "1h", "page_size": 10, **JAN_2023}).json()
    assert first["count"] == 10
    query = parse_qs(urlsplit(first["next"]).query)
    assert query["start"] == ["2023-01-01T00:00:00Z"] and query["end"] == ["2023-01-02T00:00:00Z"]
    second = entitled.get(first["next"]).json()
    assert second["results"][0]["timestamp"] == "2023-01-01T10:00:00Z"
    third = entitled.get(second["next"]).json()
    assert third["count"] == 4 and third["next"] is None


def test_json_and_csv_decimals_are_exact(entitled, coincap):
    coincap.add_series(
        "bitcoin",
        "h1",
        {
            1672531200000: "16547.123456789012345678",
            1672534800000: "16550.5000",
            1672538400000: "0.000000000000000001",
            1672542000000: "12345678901234567890.1",
        },
    )
    params = {"frequency": "1h", "start": "2023-01-01T00:00:00Z", "end": "2023-01-01T04:00:00Z"}
    expected = ["16547.123456789012345678", "16550.5", "0.000000000000000001", "12345678901234567890.1"]

    body = entitled.get(URL, params).json()
    assert [r["price_usd"] for r in body["results"]] == expected
    assert body["source"] == "coincap"
    assert PricePoint.objects.get(timestamp=datetime(2023, 1, 1, tzinfo=UTC)).price_usd == Decimal(
        "16547.123456789012345678"
    )

    response = entitled.get(URL, {**params, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["timestamp", "price_usd"]
    assert rows[1:] == [
        ["2023-01-01T00:00:00Z", expected[0]],
        ["2023-01-01T01:00:00Z", expected[1]],
        ["2023-01-01T02:00:00Z", expected[2]],
        ["2023-01-01T03:00:00Z", expected[3]],
    ]
    assert response["X-Price-Source"] == "coincap"


def test_instants_with_a_fraction_of_a_second_keep_all_six_digits(entitled, coincap):
    coincap.add_series(
        "bitcoin",
        "h1",
        {1672531200000: "1", 1672534800500: "2", 1672538400001: "3", 1672542000123: "4"},
    )
    params = {"frequency": "1h", "start": "2023-01-01T00:00:00Z", "end": "2023-01-01T04:00:00Z"}
    expected = [
        "2023-01-01T00:00:00Z",
        "2023-01-01T01:00:00.500000Z",
        "2023-01-01T02:00:00.001000Z",
        "2023-01-01T03:00:00.123000Z",
    ]

    body = entitled.get(URL, params).json()
    assert [r["timestamp"] for r in body["results"]] == expected
    lines = entitled.get(URL, {**params, "format": "csv"}).content.decode().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == expected


def test_csv_by_accept_header_with_link_to_the_next_page(entitled, synthetic):
    response = entitled.get(URL, {"frequency": "1h", "page_size": 5, **JAN_2023}, HTTP_ACCEPT="text/csv")
    assert response["Content-Type"].startswith("text/csv")
    assert len(response.content.decode().strip().splitlines()) == 6
    link = response["Link"]
    assert link.startswith("<http://testserver/api/v1/datasets/BTC/prices?") and link.endswith('>; rel="next"')
    following = entitled.get(link[1 : link.index(">")], HTTP_ACCEPT="text/csv")
    assert following.content.decode().splitlines()[1].startswith("2023-01-01T05:00:00Z,")


def test_errors_stay_problem_json_when_csv_is_asked(quant_client, btc, synthetic):
    response = quant_client.get(URL, {"frequency": "1d", "format": "csv"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_entitled"


def test_freshness_is_in_header_and_body(entitled, coincap):
    coincap.add_history("bitcoin", "h1", datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC))
    response = entitled.get(URL, {"frequency": "1h", **JAN_2023})
    body = response.json()
    state = PriceSyncState.objects.get(dataset__symbol="BTC", frequency="1h")
    assert body["data_as_of"] is not None
    assert response["X-Data-As-Of"] == body["data_as_of"]
    assert datetime.fromisoformat(body["data_as_of"]) == state.last_success_at
    assert body["latest_point_at"] == "2023-01-01T23:00:00Z"
    assert body["complete"] is True and response["X-Data-Complete"] == "true"


@pytest.mark.usefixtures("api_keys_kept")
def test_stored_range_is_not_fetched_again(entitled, coincap, django_assert_num_queries):
    coincap.add_history("bitcoin", "h1", datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC))
    assert entitled.get(URL, {"frequency": "1h", **JAN_2023}).json()["count"] == 24
    calls = len(coincap.history_requests())
    assert calls == 1
    with django_assert_num_queries(5):
        again = entitled.get(URL, {"frequency": "1h", **JAN_2023})
    assert again.json()["count"] == 24
    assert len(coincap.history_requests()) == calls


def test_coincap_down_and_nothing_stored_is_503(entitled, coincap):
    coincap.script(500, times=10)
    response = entitled.get(URL, {"frequency": "1h", **JAN_2023})
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "price_source_unavailable"
    assert "unavailable" in body["detail"]
    assert not PricePoint.objects.exists() and not PriceCoverage.objects.exists()
    state = PriceSyncState.objects.get(dataset__symbol="BTC", frequency="1h")
    assert "500" in state.last_error and state.last_success_at is None


def test_coincap_down_with_part_stored_serves_it_marked_incomplete(entitled, coincap):
    coincap.add_history("bitcoin", "h1", datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 3, tzinfo=UTC))
    assert entitled.get(URL, {"frequency": "1h", **JAN_2023}).json()["count"] == 24
    coincap.script(503, times=10)
    response = entitled.get(URL, {"frequency": "1h", "start": "2023-01-01T00:00:00Z", "end": "2023-01-03T00:00:00Z"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 24 and body["complete"] is False and "failed" in body["warning"]
    assert response["X-Data-Complete"] == "false"


@pytest.mark.parametrize(
    "failure",
    [
        {"fixture": "maintenance.html"},
        {"fixture": "retired_v2_message.json"},
        {"fixture": "message_object.json"},
        {"fixture": "bad_price.json"},
        {"fixture": "huge_price.json"},
    ],
)
def test_a_bad_answer_in_a_later_chunk_stores_nothing(entitled, coincap, settings, failure):
    settings.COINCAP_CHUNK_H1 = timedelta(days=1)
    coincap.add_history("bitcoin", "h1", datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 4, tzinfo=UTC))
    coincap.script(200, path="/history")  # the first chunk is fine
    coincap.script(200, path="/history", **failure)  # the second is not
    params = {"frequency": "1h", "start": "2023-01-01T00:00:00Z", "end": "2023-01-04T00:00:00Z"}
    response = entitled.get(URL, params)
    assert response.status_code == 503
    assert not PricePoint.objects.exists()
    assert not PriceCoverage.objects.exists()


def test_an_empty_list_where_data_was_due_stores_nothing(entitled, coincap, settings):
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    coincap.add_history("bitcoin", "h1", now - timedelta(days=3), now)
    coincap.script(200, fixture="empty_history.json", path="/history")
    response = entitled.get(URL, {"frequency": "1h"})
    assert response.status_code == 503
    assert "empty list" in response.json()["detail"]
    assert not PricePoint.objects.exists()


def test_unknown_asset_at_coincap_is_503_naming_it(entitled, coincap, btc):
    btc.coincap_id = "notacoin"
    btc.save()
    response = entitled.get(URL, {"frequency": "1h", **JAN_2023})
    assert response.status_code == 503
    assert "notacoin" in response.json()["detail"]


def test_synthetic_source_is_labelled(entitled, synthetic):
    response = entitled.get(URL, {"frequency": "1d", **JAN_2023})
    assert response.json()["source"] == "synthetic"
    assert response["X-Price-Source"] == "synthetic"
    csv_response = entitled.get(URL, {"frequency": "1d", "format": "csv", **JAN_2023})
    assert csv_response["X-Price-Source"] == "synthetic"
    assert set(PricePoint.objects.values_list("source", flat=True)) == {"synthetic"}


def test_synthetic_prices_are_deterministic(entitled, synthetic):
    first = entitled.get(URL, {"frequency": "1h", **JAN_2023}).json()["results"]
    PricePoint.objects.all().delete()
    PriceCoverage.objects.all().delete()
    second = entitled.get(URL, {"frequency": "1h", **JAN_2023}).json()["results"]
    assert first == second and len(first) == 24
