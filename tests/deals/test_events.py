"""deal.created / deal.updated go to the outbox in the write's transaction, to the buyers authorised then,
and reach a real local receiver signed per Standard Webhooks; a de-authorised buyer stops receiving at once."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from accounts.models import Role
from deals import services
from tests.deals.support import AUTHORIZED_BUYERS, DEALS, deal_body
from webhooks import services as webhook_services
from webhooks.models import Delivery, Event, EventRecipient
from webhooks.registry import audience_allows

pytestmark = pytest.mark.django_db


def events(event_type):
    return list(Event.objects.filter(type=event_type).order_by("id"))


def recipients(event):
    return set(EventRecipient.objects.filter(event=event).values_list("account__ref", flat=True))


def test_created_event_goes_to_authorised_buyers_only(
    seller_client, buyer_client, other_buyer_client, make_client, authorize, post_deal
):
    authorize(seller_client, buyer_client)
    make_client(Role.BUYER)  # never authorised
    inactive = make_client(Role.BUYER, is_active=False)
    authorize(seller_client, inactive)

    deal = post_deal(seller_client)

    (event,) = events("deal.created")
    assert event.data == deal
    assert recipients(event) == {buyer_client.account.ref}


def test_no_authorised_buyer_means_no_event(seller_client, post_deal):
    post_deal(seller_client)
    assert not Event.objects.exists()


def test_updated_event_carries_the_deal_its_version_and_the_changes(seller_client, buyer_client, authorize, post_deal):
    authorize(seller_client, buyer_client)
    deal = post_deal(seller_client)

    response = seller_client.patch(
        f"{DEALS}/{deal['id']}",
        {"discount": {"type": "percentage", "amount": "25"}, "status": "sold"},
        format="json",
    )

    (event,) = events("deal.updated")
    assert event.data == {**response.json(), "changes": event.data["changes"]}
    assert event.data["version"] == 2
    assert event.data["seller"] == seller_client.account.ref
    assert event.data["changes"] == {
        "discount": [{"type": "flat", "amount": "10.00"}, {"type": "percentage", "amount": "25.00"}],
        "final_price": ["90.00", "75.00"],
        "status": ["available", "sold"],
    }
    assert recipients(event) == {buyer_client.account.ref}


def test_items_change_lists_old_and_new_items(seller_client, buyer_client, authorize, post_deal):
    authorize(seller_client, buyer_client)
    deal = post_deal(seller_client, discount=None)
    new_items = [{"id": "sku-1", "name": "Bundle", "price": "50.00"}]

    seller_client.patch(f"{DEALS}/{deal['id']}", {"items": new_items}, format="json")

    changes = events("deal.updated")[0].data["changes"]
    assert changes["items"] == [deal["items"], new_items]
    assert changes["total_price"] == ["100.00", "50.00"]
    assert changes["final_price"] == ["100.00", "50.00"]
    assert set(changes) == {"items", "total_price", "final_price"}


def test_patch_that_changes_nothing_publishes_nothing(seller_client, buyer_client, authorize, post_deal):
    authorize(seller_client, buyer_client)
    deal = post_deal(seller_client)

    seller_client.patch(f"{DEALS}/{deal['id']}", {"name": deal["name"], "total_price": "100"}, format="json")

    assert events("deal.updated") == []


def test_failed_write_publishes_nothing(seller_client, buyer_client, authorize, post_deal):
    authorize(seller_client, buyer_client)
    deal = post_deal(seller_client)
    url = f"{DEALS}/{deal['id']}"

    assert seller_client.patch(url, {"total_price": "1"}, format="json").status_code == 400
    assert seller_client.patch(url, {"name": "x"}, format="json", HTTP_IF_MATCH='"stale"').status_code == 412
    assert events("deal.updated") == []


def test_event_rolls_back_with_the_write(seller_client, buyer_client, authorize):
    authorize(seller_client, buyer_client)

    with pytest.raises(RuntimeError), transaction.atomic():
        services.deal_create(
            seller=seller_client.account,
            name="Rolled back",
            currency="GBP",
            items=[{"id": "a", "name": "A", "price": 1}],
            actor=seller_client.account,
        )
        assert len(events("deal.created")) == 1
        raise RuntimeError("the surrounding transaction fails")

    assert events("deal.created") == []


def test_audience_check_follows_the_current_authorisation(seller_client, buyer_client, authorize, post_deal):
    authorize(seller_client, buyer_client)
    post_deal(seller_client)
    (event,) = events("deal.created")
    assert audience_allows(event.type, event.data, buyer_client.account.pk)

    seller_client.delete(f"{AUTHORIZED_BUYERS}/{buyer_client.account.ref}")

    assert not audience_allows(event.type, event.data, buyer_client.account.pk)
    assert not audience_allows("deal.created", {"id": event.data["id"]}, buyer_client.account.pk)


def test_buyer_receives_signed_deal_events_on_its_webhook(
    seller_client, buyer_client, authorize, webhook_receiver, deliver_now
):
    endpoint = webhook_services.endpoint_create(account=buyer_client.account, url=webhook_receiver.url)
    authorize(seller_client, buyer_client)

    created = seller_client.post(DEALS, deal_body(), format="json").json()
    seller_client.patch(f"{DEALS}/{created['id']}", {"status": "sold"}, format="json")
    deliver_now()

    first, second = webhook_receiver.wait_for(2)
    verifier = Webhook(endpoint.secret)
    body = verifier.verify(first.body, first.headers)
    assert body["type"] == "deal.created"
    assert body["data"] == created
    assert first.headers["webhook-id"] == events("deal.created")[0].public_id
    body = verifier.verify(second.body, second.headers)
    assert body["type"] == "deal.updated"
    assert body["data"]["version"] == 2
    assert body["data"]["changes"] == {"status": ["available", "sold"]}


def test_deauthorised_buyer_gets_no_queued_retry(
    seller_client, buyer_client, authorize, webhook_receiver, deliver_now, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = [timedelta(seconds=3600)]
    webhook_services.endpoint_create(account=buyer_client.account, url=webhook_receiver.url)
    authorize(seller_client, buyer_client)
    webhook_receiver.respond(503)
    seller_client.post(DEALS, deal_body(), format="json")
    assert deliver_now() == 1
    webhook_receiver.wait_for(1)
    assert Delivery.objects.get().status == "pending"  # a retry is queued for later

    seller_client.delete(f"{AUTHORIZED_BUYERS}/{buyer_client.account.ref}")
    Delivery.objects.update(next_attempt_at=timezone.now())  # the retry falls due
    deliver_now()

    assert len(webhook_receiver.requests) == 1
    assert Delivery.objects.get().status == "cancelled"


def test_fan_out_costs_the_same_queries_for_many_buyers(
    seller_client, make_client, authorize, post_deal, django_assert_num_queries, settings
):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    buyers = [make_client(Role.BUYER) for _ in range(25)]
    for buyer in buyers:
        authorize(seller_client, buyer)
        webhook_services.endpoint_create(account=buyer.account, url="http://127.0.0.1:9/in")
    de_authorised = buyers[-1]
    post_deal(seller_client)
    seller_client.delete(f"{AUTHORIZED_BUYERS}/{de_authorised.account.ref}")
    (event,) = events("deal.created")

    with django_assert_num_queries(7):
        created = webhook_services.event_fanout(event_id=event.pk)

    assert len(created) == 24
    assert de_authorised.account.pk not in set(
        Delivery.objects.filter(event=event).values_list("endpoint__account_id", flat=True)
    )


def test_a_write_takes_a_fixed_number_of_queries(
    seller_client, buyer_client, authorize, post_deal, django_assert_num_queries
):
    # Inside the test's transaction, so the service's own transaction is a savepoint and its release.
    authorize(seller_client, buyer_client)
    deal = post_deal(seller_client)
    url = f"{DEALS}/{deal['id']}"

    # The deal with its items and audience under one lock, its update, the audit entry, the event with its recipients.
    with django_assert_num_queries(6):
        assert seller_client.patch(url, {"name": "Renamed"}, format="json").status_code == 200
    # Replaced items add their delete and insert.
    with django_assert_num_queries(8):
        items = [{"id": "sku-9", "name": "Other", "price": "100.00"}]
        assert seller_client.patch(url, {"items": items}, format="json").status_code == 200
    # A change that changes nothing reads the deal and writes nothing.
    with django_assert_num_queries(3):
        assert seller_client.patch(url, {"name": "Renamed"}, format="json").status_code == 200
    # The deal, its items, the audit entry, the audience, the event with its recipients.
    with django_assert_num_queries(7):
        post_deal(seller_client)

    assert [event.data["version"] for event in events("deal.updated")] == [2, 3]
