"""Webhook writes people make, over the API or in the admin, are audited with their actor and shown in the
endpoint's or the delivery's History: pings, redeliveries, and endpoints Ops delete. Saving a delivery's
read-only page writes nothing over what the sender recorded."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import AuditEntry
from tests.history import admin_history, audited
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/webhooks/endpoint/"


def _failed_delivery(client, receiver, register_endpoint, publish, deliver_now, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = []  # a single attempt
    endpoint = register_endpoint(client, receiver.url)
    receiver.respond(500)
    event = publish(client.account)
    deliver_now()
    delivery = Delivery.objects.get(endpoint_id=endpoint["id"])
    assert delivery.status == "failed"
    receiver.respond(200)
    return Endpoint.objects.get(pk=endpoint["id"]), delivery, event


def test_a_ping_and_a_redelivery_over_the_api_are_audited_with_the_owner(
    admin_client, buyer_client, webhook_receiver, register_endpoint, publish, deliver_now, settings
):
    endpoint, delivery, event = _failed_delivery(
        buyer_client, webhook_receiver, register_endpoint, publish, deliver_now, settings
    )
    ping = buyer_client.post(f"/api/v1/webhook-endpoints/{endpoint.pk}/ping")
    assert ping.status_code == 202, ping.content
    assert buyer_client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/redeliver").status_code == 202

    buyer = f"buyer:{buyer_client.account.ref}"
    ping_event = Delivery.objects.exclude(pk=delivery.pk).get(endpoint=endpoint).event
    assert [row[1:4] for row in admin_history(admin_client, "webhooks_endpoint", endpoint.pk)][-1] == [
        buyer,
        "pinged",
        f"webhook.ping {ping_event.public_id} sent.",
    ]
    message = f"{event.type} {event.public_id} to {endpoint.url}: was failed, sent again now."
    assert audited(delivery) == [(buyer, "redelivered", message, "")]
    assert [row[1:4] for row in admin_history(admin_client, "webhooks_delivery", delivery.pk)] == [
        [buyer, "redelivered", message]
    ]


def test_redeliveries_ops_make_in_the_admin_are_audited(
    admin_client, admin_user, buyer_client, webhook_receiver, register_endpoint, publish, deliver_now, settings
):
    endpoint, delivery, event = _failed_delivery(
        buyer_client, webhook_receiver, register_endpoint, publish, deliver_now, settings
    )
    since = timezone.now() - timedelta(hours=1)
    admin_client.post(
        ENDPOINTS,
        {
            "action": "redeliver_failed_since",
            "_selected_action": [endpoint.pk],
            "apply": "1",
            "since": since.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
    deliver_now()
    assert Delivery.objects.get(pk=delivery.pk).status == "succeeded"
    admin_client.post("/admin/webhooks/delivery/", {"action": "redeliver_selected", "_selected_action": [delivery.pk]})

    admin = f"admin:{admin_user.username}"
    assert audited(endpoint)[-1] == (
        admin,
        "failed deliveries redelivered",
        f"1 failed deliveries created since {since:%Y-%m-%d %H:%M} UTC sent again.",
        "",
    )
    assert audited(delivery) == [
        (admin, "redelivered", f"{event.type} {event.public_id} to {endpoint.url}: was succeeded, sent again now.", "")
    ]


def test_an_endpoint_ops_delete_in_the_admin_goes_through_the_service_and_is_audited(
    admin_client, admin_user, buyer_client, register_endpoint, settings
):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    endpoint = register_endpoint(buyer_client, "http://127.0.0.1:9/in")

    response = admin_client.post(
        ENDPOINTS, {"action": "delete_selected", "_selected_action": [endpoint["id"]], "post": "yes"}
    )

    assert response.status_code == 302
    assert not Endpoint.objects.filter(pk=endpoint["id"]).exists()
    entries = AuditEntry.objects.filter(object_id=str(endpoint["id"]), object_repr__contains="127.0.0.1:9")
    assert list(entries.order_by("at", "id").values_list("actor", "action")) == [
        (f"buyer:{buyer_client.account.ref}", "created"),
        (f"admin:{admin_user.username}", "deleted"),
    ]


def test_saving_a_delivery_page_writes_nothing(
    admin_client, buyer_client, webhook_receiver, register_endpoint, publish, deliver_now, settings
):
    _, delivery, _ = _failed_delivery(buyer_client, webhook_receiver, register_endpoint, publish, deliver_now, settings)

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(
            f"/admin/webhooks/delivery/{delivery.pk}/change/",
            {"attempts-TOTAL_FORMS": "0", "attempts-INITIAL_FORMS": "0"},
        )

    assert response.status_code == 302
    assert [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and '"webhooks_' in q["sql"]] == []
