"""Ops see deals and manage authorisations in the admin."""

import pytest

from accounts.models import Role
from deals.models import BuyerAuthorization, Deal
from tests.deals.support import DEALS
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

AUTH_ADMIN = "/admin/deals/buyerauthorization/"


def test_deal_pages_list_and_show_items_read_only(admin_client, seller_client, post_deal):
    post_deal(seller_client)

    listing = admin_client.get("/admin/deals/deal/", {"q": seller_client.account.ref})
    assert listing.status_code == 200
    assert b"Summer bundle" in listing.content

    page = admin_client.get(f"/admin/deals/deal/{Deal.objects.get().pk}/change/")
    assert page.status_code == 200
    assert b"sku-2" in page.content
    assert b'name="_save"' not in page.content
    assert admin_client.get("/admin/deals/deal/add/").status_code == 403


def test_ops_authorise_a_buyer_and_it_sees_the_deals(admin_client, admin_user, seller_client, buyer_client, post_deal):
    deal = post_deal(seller_client)

    response = admin_client.post(
        f"{AUTH_ADMIN}add/", {"seller": seller_client.account.pk, "buyer": buyer_client.account.pk}
    )

    assert response.status_code == 302, response.content
    authorization = BuyerAuthorization.objects.get()
    assert authorization.created_by_user == admin_user
    assert buyer_client.get(f"{DEALS}/{deal['id']}").status_code == 200
    assert admin_user.username.encode() in admin_client.get(AUTH_ADMIN).content


def test_admin_refuses_a_seller_as_buyer(admin_client, seller_client):
    other_seller = AccountFactory(role=Role.SELLER)
    response = admin_client.post(f"{AUTH_ADMIN}add/", {"seller": seller_client.account.pk, "buyer": other_seller.pk})
    assert response.status_code == 200  # the form again, with the error
    assert not BuyerAuthorization.objects.exists()


def test_ops_deauthorise_with_the_delete_action(admin_client, seller_client, buyer_client, authorize, post_deal):
    deal = post_deal(seller_client)
    authorize(seller_client, buyer_client)
    pk = BuyerAuthorization.objects.get().pk

    response = admin_client.post(AUTH_ADMIN, {"action": "delete_selected", "_selected_action": [pk], "post": "yes"})

    assert response.status_code == 302
    assert not BuyerAuthorization.objects.exists()
    assert buyer_client.get(f"{DEALS}/{deal['id']}").status_code == 404
