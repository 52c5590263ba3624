from decimal import Decimal

import pytest

from deals.models import Deal
from tests.deals.support import AUTHORIZED_BUYERS, AUTHORIZED_SELLERS, DEALS, deal_body

pytestmark = pytest.mark.django_db


def test_seller_posts_a_deal_in_the_seed_shape(seller_client):
    response = seller_client.post(DEALS, deal_body(seller=seller_client.account.ref), format="json")

    assert response.status_code == 201, response.content
    deal = response.json()
    assert deal["seller"] == seller_client.account.ref
    assert deal["name"] == "Summer bundle"
    assert deal["currency"] == "GBP"
    assert deal["total_price"] == "100.00"
    assert deal["discount"] == {"type": "flat", "amount": "10.00"}
    assert deal["final_price"] == "90.00"
    assert deal["status"] == "available"
    assert deal["items"] == [
        {"id": "sku-1", "name": "Bundle", "price": "60.00"},
        {"id": "sku-2", "name": "Extra", "price": "40.00"},
    ]
    assert deal["version"] == 1
    assert deal["created_at"] == deal["updated_at"]
    assert response["ETag"] == f'"{deal["id"]}.1"'
    assert response["Location"] == f"/api/v1/deals/{deal['id']}"


def test_total_price_is_computed_when_omitted_and_discount_is_optional(seller_client):
    body = deal_body(discount=None)
    del body["total_price"]
    response = seller_client.post(DEALS, body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["total_price"] == "100.00"
    assert response.json()["discount"] is None
    assert response.json()["final_price"] == "100.00"


def test_percentage_discount_rounds_half_up_to_the_minor_unit(seller_client):
    body = deal_body(
        total_price=None,
        items=[{"id": "a", "name": "A", "price": "10.05"}],
        discount={"type": "percentage", "amount": 50},
    )
    deal = seller_client.post(DEALS, body, format="json").json()
    # 50% of 10.05 is 5.025, rounded half-up to 5.03 off: 5.02 left.
    assert deal["final_price"] == "5.02"
    assert deal["discount"] == {"type": "percentage", "amount": "50.00"}


def test_zero_decimal_currency_is_formatted_without_decimals(seller_client):
    body = deal_body(currency="jpy", total_price=None, discount=None, items=[{"id": "a", "name": "A", "price": 1500}])
    deal = seller_client.post(DEALS, body, format="json").json()
    assert deal["currency"] == "JPY"
    assert deal["total_price"] == "1500"


def test_seller_lists_only_own_deals(seller_client, other_seller_client, post_deal):
    mine = post_deal(seller_client)
    post_deal(other_seller_client)

    response = seller_client.get(DEALS)

    assert response.status_code == 200
    assert [d["id"] for d in response.json()["results"]] == [mine["id"]]


def test_seller_body_naming_another_seller_is_400(seller_client, other_seller_client):
    response = seller_client.post(DEALS, deal_body(seller=other_seller_client.account.ref), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "seller" in response.json()["errors"]
    assert not Deal.objects.exists()


def test_another_sellers_deal_is_404_to_read_and_to_patch(seller_client, other_seller_client, post_deal):
    deal = post_deal(seller_client)

    assert other_seller_client.get(f"{DEALS}/{deal['id']}").status_code == 404
    response = other_seller_client.patch(f"{DEALS}/{deal['id']}", {"name": "Mine now"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert seller_client.get(f"{DEALS}/{deal['id']}").json()["name"] == "Summer bundle"


def test_patch_changes_fields_bumps_version_and_etag(seller_client, post_deal):
    deal = post_deal(seller_client)

    response = seller_client.patch(f"{DEALS}/{deal['id']}", {"status": "sold"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "sold"
    assert response.json()["version"] == 2
    assert response["ETag"] == f'"{deal["id"]}.2"'
    assert response.json()["updated_at"] > deal["updated_at"]


def test_patch_replaces_items_whole_and_recomputes_the_total(seller_client, post_deal):
    deal = post_deal(seller_client, discount=None)

    response = seller_client.patch(
        f"{DEALS}/{deal['id']}", {"items": [{"id": "sku-9", "name": "Only", "price": "12.50"}]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["items"] == [{"id": "sku-9", "name": "Only", "price": "12.50"}]
    assert response.json()["total_price"] == "12.50"
    assert response.json()["final_price"] == "12.50"


def test_patch_that_changes_nothing_keeps_the_version(seller_client, post_deal):
    deal = post_deal(seller_client)

    response = seller_client.patch(
        f"{DEALS}/{deal['id']}",
        {"name": "Summer bundle", "currency": "GBP", "total_price": "100", "items": deal["items"]},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert response.json()["updated_at"] == deal["updated_at"]


def test_stale_if_match_is_412_with_the_current_version(seller_client, post_deal):
    deal = post_deal(seller_client)
    url = f"{DEALS}/{deal['id']}"
    first_etag = f'"{deal["id"]}.1"'
    assert seller_client.patch(url, {"name": "One"}, format="json", HTTP_IF_MATCH=first_etag).status_code == 200

    response = seller_client.patch(url, {"name": "Two"}, format="json", HTTP_IF_MATCH=first_etag)

    assert response.status_code == 412
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "precondition_failed"
    assert response.json()["current_version"] == 2
    assert response.json()["etag"] == f'"{deal["id"]}.2"'
    assert seller_client.get(url).json()["name"] == "One"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("{etag}", 200),
        ('W/"{id}.1"', 412),
        ('"{id}.7", {etag}', 200),
        ('"00000000-0000-0000-0000-000000000000.1"', 412),
        ("*", 200),
        ("garbage", 412),
    ],
)
def test_if_match_uses_strong_comparison(seller_client, post_deal, header, expected):
    deal = post_deal(seller_client)
    url = f"{DEALS}/{deal['id']}"
    etag = seller_client.get(url)["ETag"]

    response = seller_client.patch(
        url, {"name": "Renamed"}, format="json", HTTP_IF_MATCH=header.format(etag=etag, id=deal["id"])
    )

    assert response.status_code == expected


def test_get_answers_etag_and_304_on_if_none_match(seller_client, post_deal):
    deal = post_deal(seller_client)
    url = f"{DEALS}/{deal['id']}"
    etag = seller_client.get(url)["ETag"]

    assert seller_client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    seller_client.patch(url, {"name": "Changed"}, format="json")
    assert seller_client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_buyer_sees_only_authorised_sellers_deals(
    seller_client, other_seller_client, buyer_client, authorize, post_deal
):
    visible = post_deal(seller_client)
    hidden = post_deal(other_seller_client)
    authorize(seller_client, buyer_client)

    listed = buyer_client.get(DEALS).json()["results"]
    assert [d["id"] for d in listed] == [visible["id"]]
    assert buyer_client.get(f"{DEALS}/{visible['id']}").json() == visible
    response = buyer_client.get(f"{DEALS}/{hidden['id']}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_unauthorised_buyer_sees_nothing(seller_client, buyer_client, post_deal):
    deal = post_deal(seller_client)

    assert buyer_client.get(DEALS).json()["results"] == []
    assert buyer_client.get(f"{DEALS}/{deal['id']}").status_code == 404


def test_buyer_cannot_write_deals(buyer_client, seller_client, authorize, post_deal):
    deal = post_deal(seller_client)
    authorize(seller_client, buyer_client)

    assert buyer_client.post(DEALS, deal_body(), format="json").status_code == 403
    response = buyer_client.patch(f"{DEALS}/{deal['id']}", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_other_roles_are_refused(quant_client, ops_client, anon_client):
    assert quant_client.get(DEALS).status_code == 403
    assert ops_client.get(DEALS).status_code == 403
    assert anon_client.get(DEALS).status_code == 401


def test_deauthorised_buyer_stops_seeing_deals_at_once(seller_client, buyer_client, authorize, post_deal):
    deal = post_deal(seller_client)
    authorize(seller_client, buyer_client)
    assert buyer_client.get(f"{DEALS}/{deal['id']}").status_code == 200

    response = seller_client.delete(f"{AUTHORIZED_BUYERS}/{buyer_client.account.ref}")

    assert response.status_code == 204
    assert buyer_client.get(f"{DEALS}/{deal['id']}").status_code == 404
    assert buyer_client.get(DEALS).json()["results"] == []


def test_authorised_buyers_and_sellers_lists(seller_client, other_seller_client, buyer_client, authorize):
    first = seller_client.post(AUTHORIZED_BUYERS, {"buyer": buyer_client.account.ref}, format="json")
    again = seller_client.post(AUTHORIZED_BUYERS, {"buyer": buyer_client.account.ref}, format="json")
    authorize(other_seller_client, buyer_client)

    assert first.status_code == 201
    assert first.json()["buyer"] == buyer_client.account.ref
    assert again.status_code == 200
    assert again.json()["created_at"] == first.json()["created_at"]
    buyers = seller_client.get(AUTHORIZED_BUYERS).json()["results"]
    assert [b["buyer"] for b in buyers] == [buyer_client.account.ref]
    sellers = buyer_client.get(AUTHORIZED_SELLERS).json()["results"]
    assert {s["seller"] for s in sellers} == {seller_client.account.ref, other_seller_client.account.ref}


def test_authorising_a_ref_that_is_not_a_buyer_answers_alike_whether_it_exists_or_not(
    seller_client, other_seller_client, ops_client
):
    """The answer reveals neither whether an account has the ref nor its role."""
    answers = []
    for ref in (other_seller_client.account.ref, ops_client.account.ref, "nobody-here"):
        response = seller_client.post(AUTHORIZED_BUYERS, {"buyer": ref}, format="json")
        body = response.json()
        body.pop("instance", None)
        answers.append((response.status_code, body))
    assert answers[0][0] == 400
    assert answers[0][1]["errors"] == {"buyer": ["No buyer account has this ref."]}
    assert answers[0] == answers[1] == answers[2]


def test_deleting_an_authorisation_that_does_not_exist_is_404(seller_client, buyer_client):
    assert seller_client.delete(f"{AUTHORIZED_BUYERS}/{buyer_client.account.ref}").status_code == 404


def test_authorisation_endpoints_are_role_bound(seller_client, buyer_client):
    assert buyer_client.get(AUTHORIZED_BUYERS).status_code == 403
    assert seller_client.get(AUTHORIZED_SELLERS).status_code == 403


def test_money_is_exact_for_json_numbers(seller_client):
    from tests.deals.support import raw_json

    text = (
        '{"name": "Exact", "currency": "usd", "total_price": 0.3, '
        '"items": [{"id": "a", "name": "A", "price": 0.1}, {"id": "b", "name": "B", "price": 0.2}]}'
    )
    response = raw_json(seller_client, "post", DEALS, text)

    assert response.status_code == 201, response.content
    assert response.json()["total_price"] == "0.30"
    assert Deal.objects.get().total_price == Decimal("0.3")


def test_schema_describes_the_deal_endpoints(anon_client):
    response = anon_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = response.json()
    listing = schema["paths"]["/api/v1/deals"]["get"]
    assert {"seller", "status", "currency", "updated_after", "min_price", "max_price"} <= {
        p["name"] for p in listing["parameters"]
    }
    patch = schema["paths"]["/api/v1/deals/{deal_id}"]["patch"]
    assert "If-Match" in {p["name"] for p in patch["parameters"]}
    assert "412" in patch["responses"]
    assert {"/api/v1/authorized-buyers", "/api/v1/authorized-buyers/{ref}", "/api/v1/authorized-sellers"} <= set(
        schema["paths"]
    )
