"""Deal lists: filters, cursor pagination by update time, bounded queries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Role
from deals.models import Deal
from tests.deals.support import DEALS

pytestmark = pytest.mark.django_db


def ids(response):
    assert response.status_code == 200, response.content
    return [deal["id"] for deal in response.json()["results"]]


@pytest.fixture
def market(make_client, authorize, post_deal):
    """Two sellers authorising one buyer, with deals in GBP and USD, available and sold."""
    alice, bob, buyer = make_client(Role.SELLER), make_client(Role.SELLER), make_client(Role.BUYER)
    authorize(alice, buyer)
    authorize(bob, buyer)
    cheap = post_deal(
        alice, name="Cheap", total_price=None, discount=None, items=[{"id": "a", "name": "A", "price": "5"}]
    )
    dear = post_deal(alice, name="Dear", currency="usd")  # 100 less 10 flat: 90
    sold = post_deal(bob, name="Sold", status="sold", discount={"type": "percentage", "amount": "50"})  # 50
    return {"alice": alice, "bob": bob, "buyer": buyer, "cheap": cheap, "dear": dear, "sold": sold}


def test_newest_update_first_by_default_and_oldest_first_on_request(market):
    buyer = market["buyer"]
    assert ids(buyer.get(DEALS)) == [market["sold"]["id"], market["dear"]["id"], market["cheap"]["id"]]
    assert ids(buyer.get(DEALS, {"ordering": "updated_at"})) == [
        market["cheap"]["id"],
        market["dear"]["id"],
        market["sold"]["id"],
    ]
    market["alice"].patch(f"{DEALS}/{market['cheap']['id']}", {"name": "Cheaper"}, format="json")
    assert ids(buyer.get(DEALS))[0] == market["cheap"]["id"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "sold"}, ["sold"]),
        ({"status": "available"}, ["dear", "cheap"]),
        ({"currency": "usd"}, ["dear"]),
        ({"currency": "GBP"}, ["sold", "cheap"]),
        ({"min_price": "50"}, ["sold", "dear"]),
        ({"max_price": "50.00"}, ["sold", "cheap"]),
        ({"min_price": "6", "max_price": "89.99"}, ["sold"]),
    ],
)
def test_filters(market, params, expected):
    assert ids(market["buyer"].get(DEALS, params)) == [market[name]["id"] for name in expected]


def test_seller_filter_takes_a_ref(market):
    buyer = market["buyer"]
    assert ids(buyer.get(DEALS, {"seller": market["bob"].account.ref})) == [market["sold"]["id"]]
    assert ids(buyer.get(DEALS, {"seller": "someone-else"})) == []


def test_updated_after_is_strict(market):
    buyer = market["buyer"]
    since = market["dear"]["updated_at"]
    assert ids(buyer.get(DEALS, {"updated_after": since})) == [market["sold"]["id"]]
    before = (parse_datetime(market["cheap"]["updated_at"]) - timedelta(seconds=1)).isoformat()
    assert len(ids(buyer.get(DEALS, {"updated_after": before}))) == 3


@pytest.mark.parametrize(
    "params",
    [
        {"status": "lost"},
        {"min_price": "abc"},
        {"updated_after": "yesterday"},
        {"updated_after": "50%"},
        {"ordering": "name"},
    ],
)
def test_invalid_filter_is_400(market, params):
    response = market["buyer"].get(DEALS, params)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["errors"]) == set(params)


def _bulk_deals(seller, count, items_per_deal=3):
    from deals.models import DealItem

    now = timezone.now()
    deals = Deal.objects.bulk_create(
        [
            Deal(
                seller=seller,
                name=f"Deal {n}",
                currency="GBP",
                total_price=Decimal(items_per_deal),
                final_price=Decimal(items_per_deal),
                # Half the deals share an update time, so pages must break ties by id.
                updated_at=now - timedelta(seconds=n // 2),
                created_at=now - timedelta(seconds=n // 2),
            )
            for n in range(count)
        ]
    )
    DealItem.objects.bulk_create(
        [
            DealItem(deal=deal, position=i, ref=f"sku-{i}", name="Item", price=Decimal(1))
            for deal in deals
            for i in range(items_per_deal)
        ]
    )
    return deals


def test_cursor_pages_cover_every_deal_once_in_order(seller_client):
    _bulk_deals(seller_client.account, 45)
    seen, url, pages = [], DEALS + "?page_size=10", 0
    while url:
        page = seller_client.get(url).json()
        seen.extend((d["updated_at"], d["id"]) for d in page["results"])
        url, pages = page["next"], pages + 1
    assert pages == 5
    assert len(seen) == len(set(seen)) == 45
    assert [u for u, _ in seen] == sorted((u for u, _ in seen), reverse=True)


@pytest.mark.usefixtures("api_keys_kept")
def test_a_page_of_many_deals_with_items_takes_a_fixed_number_of_queries(
    make_client, authorize, django_assert_num_queries
):
    buyer = make_client(Role.BUYER)
    for _ in range(3):
        seller = make_client(Role.SELLER)
        authorize(seller, buyer)
        _bulk_deals(seller.account, 40, items_per_deal=5)

    with django_assert_num_queries(4):
        response = buyer.get(DEALS, {"page_size": 100})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 100
    assert all(len(deal["items"]) == 5 for deal in response.json()["results"])


@pytest.mark.usefixtures("api_keys_kept")
def test_seller_list_query_count_is_fixed_too(seller_client, django_assert_num_queries):
    _bulk_deals(seller_client.account, 60, items_per_deal=4)
    with django_assert_num_queries(4):
        response = seller_client.get(DEALS, {"page_size": 50, "status": "available"})
    assert len(response.json()["results"]) == 50


@pytest.mark.usefixtures("api_keys_kept")
def test_authorisation_lists_take_a_fixed_number_of_queries(make_client, authorize, django_assert_num_queries):
    seller, buyer = make_client(Role.SELLER), make_client(Role.BUYER)
    for _ in range(15):
        authorize(seller, make_client(Role.BUYER))
        authorize(make_client(Role.SELLER), buyer)

    with django_assert_num_queries(2):
        buyers = seller.get("/api/v1/authorized-buyers")
    with django_assert_num_queries(3):
        sellers = buyer.get("/api/v1/authorized-sellers")

    assert len(buyers.json()["results"]) == 15
    assert len(sellers.json()["results"]) == 15
