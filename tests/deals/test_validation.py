"""Every deal rule answers 400 ``validation_error`` naming the field (docs/deals.md, "Rules")."""

from decimal import Decimal

import pytest

from deals.models import Deal
from tests.deals.support import DEALS, deal_body, raw_json

pytestmark = pytest.mark.django_db

ONE_ITEM = [{"id": "a", "name": "A", "price": "10.00"}]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "   "}, "name"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "XAU"}, "currency"),
        ({"status": "reserved"}, "status"),
        ({"items": []}, "items"),
        ({"items": "not a list"}, "items"),
        ({"items": [{"id": "a", "name": "A"}]}, "items.0.price"),
        (
            {"items": [{"id": "a", "name": "A", "price": "10"}, {"id": "b", "name": "B", "price": "-1"}]},
            "items.1.price",
        ),
        ({"items": [{"id": "a", "name": "A", "price": "10.001"}], "total_price": None}, "items.0.price"),
        ({"items": [{"id": "a", "name": "A", "price": "ten"}]}, "items.0.price"),
        ({"items": [{"id": "a", "name": "A", "price": True}]}, "items.0.price"),
        ({"items": [{"id": "a", "name": "A", "price": "NaN"}]}, "items.0.price"),
        ({"items": [{"id": "a", "name": "A", "price": "Infinity"}]}, "items.0.price"),
        ({"items": [{"id": "a", "name": "A", "price": "1e16"}], "total_price": None}, "items.0.price"),
        ({"items": [*ONE_ITEM, {"id": "a", "name": "Again", "price": "0"}], "total_price": None}, "items.1.id"),
        ({"items": [{"id": "", "name": "A", "price": "1"}]}, "items.0.id"),
        ({"total_price": "99.99"}, "total_price"),
        ({"total_price": "-100"}, "total_price"),
        ({"total_price": "100.005"}, "total_price"),
        ({"discount": {"type": "flat", "amount": "100.01"}}, "discount.amount"),
        ({"discount": {"type": "flat", "amount": "0"}}, "discount.amount"),
        ({"discount": {"type": "flat", "amount": "-5"}}, "discount.amount"),
        ({"discount": {"type": "flat", "amount": "1.234"}}, "discount.amount"),
        ({"discount": {"type": "percentage", "amount": "100.5"}}, "discount.amount"),
        ({"discount": {"type": "percentage", "amount": "0"}}, "discount.amount"),
        ({"discount": {"type": "percentage", "amount": "12.345"}}, "discount.amount"),
        ({"discount": {"type": "coupon", "amount": "5"}}, "discount.type"),
        ({"discount": {"type": "flat"}}, "discount.amount"),
    ],
)
def test_rule_broken_on_create_is_400_naming_the_field(seller_client, overrides, field):
    response = seller_client.post(DEALS, deal_body(**overrides), format="json")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert response["Content-Type"] == "application/problem+json"
    assert field in body["errors"], body["errors"]
    assert not Deal.objects.exists()


@pytest.mark.parametrize("missing", ["name", "currency", "items"])
def test_required_fields_on_create(seller_client, missing):
    body = deal_body()
    del body[missing]
    response = seller_client.post(DEALS, body, format="json")
    assert response.status_code == 400
    assert missing in response.json()["errors"]


def test_several_broken_rules_are_reported_together(seller_client):
    body = deal_body(
        currency="nope",
        items=[{"id": "a", "name": "A", "price": "-1"}, {"id": "a", "name": "B", "price": "1"}],
    )
    errors = seller_client.post(DEALS, body, format="json").json()["errors"]
    assert {"currency", "items.0.price", "items.1.id"} <= set(errors)


def test_boundaries_that_are_allowed(seller_client):
    body = deal_body(
        total_price="0",
        items=[{"id": "free", "name": "Free", "price": 0}],
        discount={"type": "percentage", "amount": 100},
    )
    assert seller_client.post(DEALS, body, format="json").status_code == 201
    body = deal_body(discount={"type": "flat", "amount": "100.00"})
    response = seller_client.post(DEALS, body, format="json")
    assert response.status_code == 201
    assert response.json()["final_price"] == "0.00"


def test_currency_minor_units_follow_iso_4217(seller_client):
    three = deal_body(
        currency="kwd", total_price=None, discount=None, items=[{"id": "a", "name": "A", "price": "1.005"}]
    )
    assert seller_client.post(DEALS, three, format="json").json()["total_price"] == "1.005"
    zero = deal_body(currency="JPY", total_price=None, discount=None, items=[{"id": "a", "name": "A", "price": "1.5"}])
    response = seller_client.post(DEALS, zero, format="json")
    assert response.status_code == 400
    assert "items.0.price" in response.json()["errors"]


@pytest.mark.parametrize(
    ("prices", "total"),
    [
        ("0.1, 0.2", "0.30"),
        ("1.1, 2.2", "3.30"),
        ("0.7, 0.1", "0.80"),
        ("123456789012.34, 0.01", "123456789012.35"),
        ("99999999999999.98, 0.01", "99999999999999.99"),
    ],
)
def test_json_numbers_stay_exact(seller_client, prices, total):
    # Through float, 0.1 + 0.2 != 0.3 and 99999999999999.99 reads as ...98: exactness is the parser's.
    items = ", ".join(f'{{"id": "i{n}", "name": "I", "price": {p}}}' for n, p in enumerate(prices.split(", ")))
    text = f'{{"name": "Exact", "currency": "GBP", "total_price": {total}, "items": [{items}]}}'

    response = raw_json(seller_client, "post", DEALS, text)

    assert response.status_code == 201, response.content
    assert response.json()["total_price"] == total
    assert Deal.objects.get().total_price == Decimal(total)


def test_malformed_json_is_a_problem_400(seller_client):
    response = raw_json(seller_client, "post", DEALS, '{"name": ')
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_patch_revalidates_the_whole_deal(seller_client, post_deal):
    deal = post_deal(seller_client)  # total 100.00, flat discount 10
    url = f"{DEALS}/{deal['id']}"

    cheaper = seller_client.patch(url, {"items": [{"id": "x", "name": "X", "price": "5"}]}, format="json")
    assert cheaper.status_code == 400
    assert "discount.amount" in cheaper.json()["errors"]

    response = seller_client.patch(url, {"total_price": "150"}, format="json")
    assert response.status_code == 400
    assert "total_price" in response.json()["errors"]

    response = seller_client.patch(url, {"currency": "JPY"}, format="json")
    assert response.status_code == 200  # 60 + 40 and a flat 10 are whole yen
    assert response.json()["total_price"] == "100"

    response = seller_client.patch(
        url, {"items": [{"id": "x", "name": "X", "price": "5.5"}], "discount": None}, format="json"
    )
    assert response.status_code == 400
    assert "items.0.price" in response.json()["errors"]
    assert seller_client.get(url).json()["version"] == 2


def test_sold_deal_is_frozen_until_set_available_on_its_own(seller_client, post_deal):
    deal = post_deal(seller_client)
    url = f"{DEALS}/{deal['id']}"
    assert seller_client.patch(url, {"status": "sold"}, format="json").status_code == 200

    response = seller_client.patch(url, {"name": "Renamed"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "deal_sold"
    assert response.json()["changed"] == ["name"]

    response = seller_client.patch(url, {"status": "available", "total_price": "100", "name": "Back"}, format="json")
    assert response.status_code == 409

    unchanged = seller_client.patch(url, {"name": deal["name"], "status": "sold"}, format="json")
    assert unchanged.status_code == 200
    assert unchanged.json()["version"] == 2

    relisted = seller_client.patch(url, {"status": "available"}, format="json")
    assert relisted.status_code == 200
    assert relisted.json()["version"] == 3
    assert seller_client.patch(url, {"name": "Renamed"}, format="json").status_code == 200


def test_seller_field_in_patch_must_be_the_caller(seller_client, other_seller_client, post_deal):
    deal = post_deal(seller_client)
    url = f"{DEALS}/{deal['id']}"
    response = seller_client.patch(url, {"seller": other_seller_client.account.ref}, format="json")
    assert response.status_code == 400
    assert "seller" in response.json()["errors"]
    assert seller_client.patch(url, {"seller": seller_client.account.ref}, format="json").json()["version"] == 1


def _serializer_answer(data, partial):
    from rest_framework.exceptions import ValidationError

    from deals.serializers import DealInputSerializer

    serializer = DealInputSerializer(data=data, partial=partial)
    try:
        serializer.is_valid(raise_exception=True)
    except ValidationError as exc:
        return ("invalid", exc.detail)
    return ("valid", dict(serializer.validated_data))


_ITEM = {"id": "sku-1", "name": "Bundle", "price": "60.00"}
_FULL = {"name": "Deal", "currency": "gbp", "items": [_ITEM]}


@pytest.mark.parametrize(
    "data",
    [
        {},
        _FULL,
        {**_FULL, "seller": "s-1", "total_price": "60", "status": "sold", "discount": {"type": "flat", "amount": 5}},
        {**_FULL, "total_price": None, "discount": None, "unknown": [1]},
        {"name": "  padded  "},
        {"name": "x" * 200},
        {"name": "x" * 201},
        {"name": "   "},
        {"name": ""},
        {"name": None},
        {"name": 5},
        {"name": True},
        {"name": "nul\x00"},
        {"name": "lone \ud800"},
        {"name": "café"},
        {"name": ["a"]},
        {"seller": ""},
        {"seller": None},
        {"currency": "12345678"},
        {"currency": "123456789"},
        {"total_price": Decimal("1.5")},
        {"total_price": 7},
        {"total_price": 1.25},
        {"total_price": True},
        {"total_price": "1e999999"},
        {"total_price": "0." + "0" * 40 + "1"},
        {"total_price": " 12 "},
        {"total_price": "ten"},
        {"total_price": "NaN"},
        {"discount": {"type": "percentage", "amount": "12.5"}},
        {"discount": {"type": "flat"}},
        {"discount": {"amount": "1"}},
        {"discount": {"type": "bogus", "amount": "1"}},
        {"discount": {"type": "flat", "amount": "1", "extra": 1}},
        {"discount": "flat"},
        {"discount": {"type": 1, "amount": "1"}},
        {"status": "available"},
        {"status": "SOLD"},
        {"status": ""},
        {"status": None},
        {"items": []},
        {"items": [_ITEM] * 500},
        {"items": [_ITEM] * 501},
        {"items": [{**_ITEM, "extra": True}]},
        {"items": [{**_ITEM, "id": "x" * 64}]},
        {"items": [{**_ITEM, "id": "x" * 65}]},
        {"items": [{**_ITEM, "id": 7}]},
        {"items": [{**_ITEM, "price": "-1"}]},
        {"items": [{"id": "a", "name": "A"}]},
        {"items": [None]},
        {"items": "not a list"},
        {"items": {"id": "a"}},
        {"items": None},
        ["not", "an", "object"],
        "text",
    ],
)
@pytest.mark.parametrize("partial", [False, True])
def test_deal_input_reads_exactly_as_its_serializer(data, partial):
    from rest_framework.exceptions import ValidationError

    from deals.serializers import deal_input_validate

    expected = _serializer_answer(data, partial)
    try:
        answer = ("valid", deal_input_validate(data, partial=partial))
    except ValidationError as exc:
        answer = ("invalid", exc.detail)

    assert answer == expected
