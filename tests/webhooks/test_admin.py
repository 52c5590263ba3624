"""The Ops side of webhooks in the Django admin."""

from datetime import timedelta

from django.utils import timezone

from webhooks.models import Delivery, Endpoint, Event


def _failed_endpoint(client, receiver, register_endpoint, publish, deliver_now, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = []  # a single attempt
    endpoint = register_endpoint(client, receiver.url)
    receiver.respond(410)
    publish(client.account)
    deliver_now()
    return Endpoint.objects.get(pk=endpoint["id"]), endpoint["secret"]


def test_endpoint_pages_show_the_disabled_reason_and_never_the_secret(
    admin_client, buyer_client, webhook_receiver, register_endpoint, publish, deliver_now, settings
):
    endpoint, secret = _failed_endpoint(
        buyer_client, webhook_receiver, register_endpoint, publish, deliver_now, settings
    )
    assert endpoint.enabled is False

    listing = admin_client.get("/admin/webhooks/endpoint/", {"enabled__exact": "0"})
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "410 Gone" in html
    assert secret not in html
    page = admin_client.get(f"/admin/webhooks/endpoint/{endpoint.pk}/change/").content.decode()
    assert "410 Gone" in page
    assert secret not in page
    assert "whsec_" not in page


def test_ops_re_enable_an_endpoint_and_redeliver_what_failed_since(
    admin_client, buyer_client, webhook_receiver, register_endpoint, publish, deliver_now, settings
):
    endpoint, _ = _failed_endpoint(buyer_client, webhook_receiver, register_endpoint, publish, deliver_now, settings)

    response = admin_client.post(
        "/admin/webhooks/endpoint/", {"action": "enable_selected", "_selected_action": [endpoint.pk]}
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.enabled is True
    assert endpoint.disabled_reason == ""

    # A parameterised action asks first...
    form = admin_client.post(
        "/admin/webhooks/endpoint/", {"action": "redeliver_failed_since", "_selected_action": [endpoint.pk]}
    )
    assert form.status_code == 200
    assert 'name="since"' in form.content.decode()
    assert Delivery.objects.get(endpoint=endpoint).status == "failed"
    # ...and acts on the confirmation.
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    response = admin_client.post(
        "/admin/webhooks/endpoint/",
        {"action": "redeliver_failed_since", "_selected_action": [endpoint.pk], "apply": "1", "since": since},
    )
    assert response.status_code == 302
    assert Delivery.objects.get(endpoint=endpoint).status == "pending"
    deliver_now()
    assert len(webhook_receiver.wait_for(2)) == 2
    assert Delivery.objects.get(endpoint=endpoint).status == "succeeded"


def test_ops_disable_an_endpoint_with_a_reason_and_the_owner_is_told(
    admin_client, buyer_client, receiver_factory, register_endpoint, deliver_now
):
    target, other = receiver_factory(), receiver_factory()
    endpoint = register_endpoint(buyer_client, target.url)
    register_endpoint(buyer_client, other.url, event_types=["webhook_endpoint.disabled"])

    form = admin_client.post(
        "/admin/webhooks/endpoint/", {"action": "disable_selected", "_selected_action": [endpoint["id"]]}
    )
    assert 'name="reason"' in form.content.decode()
    assert Endpoint.objects.get(pk=endpoint["id"]).enabled is True
    admin_client.post(
        "/admin/webhooks/endpoint/",
        {"action": "disable_selected", "_selected_action": [endpoint["id"]], "apply": "1", "reason": "Abuse report"},
    )
    disabled = Endpoint.objects.get(pk=endpoint["id"])
    assert disabled.enabled is False
    assert disabled.disabled_reason == "Abuse report"
    deliver_now()
    (notice,) = other.wait_for(1)
    assert notice.json()["data"]["reason"] == "Abuse report"
    assert target.requests == []


def test_deliveries_filter_by_status_and_endpoint_show_attempts_and_redeliver(
    admin_client, buyer_client, receiver_factory, register_endpoint, publish, deliver_now, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = [timedelta(seconds=0)]
    failing, fine = receiver_factory(), receiver_factory()
    bad = register_endpoint(buyer_client, failing.url)
    good = register_endpoint(buyer_client, fine.url)
    failing.script([(500, None, 0), (500, None, 0)])
    event = publish(buyer_client.account)
    deliver_now()
    failed = Delivery.objects.get(endpoint_id=bad["id"])
    assert failed.status == "failed"

    listing = admin_client.get("/admin/webhooks/delivery/", {"status__exact": "failed"}).content.decode()
    assert f"/admin/webhooks/delivery/{failed.pk}/change/" in listing
    succeeded = Delivery.objects.get(endpoint_id=good["id"])
    assert f"/admin/webhooks/delivery/{succeeded.pk}/change/" not in listing
    listing = admin_client.get("/admin/webhooks/delivery/", {"endpoint__id__exact": good["id"]}).content.decode()
    assert f"/admin/webhooks/delivery/{succeeded.pk}/change/" in listing
    assert f"/admin/webhooks/delivery/{failed.pk}/change/" not in listing

    page = admin_client.get(f"/admin/webhooks/delivery/{failed.pk}/change/").content.decode()
    assert page.count("HTTP 500") >= 2
    assert event.public_id in page or str(event) in page
    assert admin_client.get("/admin/webhooks/delivery/add/").status_code == 403

    response = admin_client.post(
        "/admin/webhooks/delivery/", {"action": "redeliver_selected", "_selected_action": [failed.pk]}
    )
    assert response.status_code == 302
    deliver_now()
    failed.refresh_from_db()
    assert failed.status == "succeeded"
    assert failed.attempt_count == 3
    assert [r.headers["webhook-id"] for r in failing.requests] == [event.public_id] * 3


def test_events_are_read_only_with_their_recipients(admin_client, make_client, publish):
    alice, bob = make_client("buyer"), make_client("buyer")
    event = publish(alice.account)
    event.recipients.create(account=bob.account)

    listing = admin_client.get("/admin/webhooks/event/").content.decode()
    assert event.public_id in listing
    page = admin_client.get(f"/admin/webhooks/event/{event.pk}/change/").content.decode()
    assert alice.account.ref in page and bob.account.ref in page
    assert 'name="_save"' not in page
    assert admin_client.get("/admin/webhooks/event/add/").status_code == 403
    assert admin_client.post(f"/admin/webhooks/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Event.objects.filter(pk=event.pk).exists()


def test_disable_without_a_reason_asks_again_and_changes_nothing(
    admin_client, buyer_client, webhook_receiver, register_endpoint
):
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    page = admin_client.post(
        "/admin/webhooks/endpoint/",
        {"action": "disable_selected", "_selected_action": [endpoint["id"]], "apply": "1", "reason": ""},
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "This field is required." in html
    assert "their owners get a webhook_endpoint.disabled event" in html
    assert f'name="_selected_action" value="{endpoint["id"]}"' in html
    assert Endpoint.objects.get(pk=endpoint["id"]).enabled is True
