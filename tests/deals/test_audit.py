"""Deal writes and buyer authorisations, over the API or in the admin, leave exactly one audit entry
naming who did it; deals show theirs in the deal's History, authorisations in the seller account's."""

import pytest

from deals.models import BuyerAuthorization, Deal
from tests.deals.support import AUTHORIZED_BUYERS, DEALS
from tests.history import admin_history, audited

pytestmark = pytest.mark.django_db

AUTH_ADMIN = "/admin/deals/buyerauthorization/"


def test_a_deal_posted_and_changed_by_its_seller_is_audited(admin_client, seller_client, post_deal):
    body = post_deal(seller_client)
    url, seller = f"{DEALS}/{body['id']}", f"seller:{seller_client.account.ref}"

    changed = seller_client.patch(url, {"name": "Winter bundle", "status": "sold"}, format="json")
    assert changed.status_code == 200, changed.content
    assert seller_client.patch(url, {"status": "sold"}, format="json").status_code == 200  # no change, no entry
    items = [{"id": "sku-1", "name": "Bundle", "price": "70.00"}]
    refused = seller_client.patch(url, {"items": items}, format="json")
    assert refused.status_code == 409  # a sold deal: refused, so nothing audited
    seller_client.patch(url, {"status": "available"}, format="json")
    seller_client.patch(url, {"items": items, "discount": {"type": "percentage", "amount": "5"}}, format="json")

    deal = Deal.objects.get(public_id=body["id"])
    expected = [
        (seller, "created", "'Summer bundle': 2 item(s), 90.00 GBP, available."),
        (seller, "changed", "Version 2: name 'Summer bundle' -> 'Winter bundle'; status available -> sold."),
        (seller, "changed", "Version 3: status sold -> available."),
        (
            seller,
            "changed",
            "Version 4: total_price 100.00 -> 70.00; discount 10.00 off -> 5.00%; final_price 90.00 -> 66.50; "
            "items replaced (2 -> 1).",
        ),
    ]
    assert [entry[:3] for entry in audited(deal)] == expected
    assert [tuple(row[1:4]) for row in admin_history(admin_client, "deals_deal", deal.pk)] == expected


def test_buyers_authorised_and_de_authorised_over_the_api_are_audited_on_the_seller(
    admin_client, seller_client, buyer_client
):
    buyer = buyer_client.account.ref
    assert seller_client.post(AUTHORIZED_BUYERS, {"buyer": buyer}, format="json").status_code == 201
    assert seller_client.post(AUTHORIZED_BUYERS, {"buyer": buyer}, format="json").status_code == 200  # already
    assert seller_client.delete(f"{AUTHORIZED_BUYERS}/{buyer}").status_code == 204

    seller = seller_client.account
    actor = f"seller:{seller.ref}"
    expected = [
        (actor, "buyer authorised", f"{buyer} sees {seller.ref}'s deals and receives their events."),
        (actor, "buyer de-authorised", f"{buyer} no longer sees {seller.ref}'s deals or receives their events."),
    ]
    assert [entry[:3] for entry in audited(seller)] == expected
    assert [tuple(row[1:4]) for row in admin_history(admin_client, "accounts_account", seller.pk)] == expected


def test_ops_authorising_and_de_authorising_in_the_admin_is_audited_on_the_seller(
    admin_client, admin_user, seller_client, buyer_client
):
    seller, buyer = seller_client.account, buyer_client.account
    assert admin_client.post(f"{AUTH_ADMIN}add/", {"seller": seller.pk, "buyer": buyer.pk}).status_code == 302
    pk = BuyerAuthorization.objects.get().pk
    response = admin_client.post(AUTH_ADMIN, {"action": "delete_selected", "_selected_action": [pk], "post": "yes"})
    assert response.status_code == 302

    admin = f"admin:{admin_user.username}"
    assert [entry[:2] for entry in audited(seller)] == [(admin, "buyer authorised"), (admin, "buyer de-authorised")]
    assert [row[1:3] for row in admin_history(admin_client, "accounts_account", seller.pk)] == [
        [admin, "buyer authorised"],
        [admin, "buyer de-authorised"],
    ]
