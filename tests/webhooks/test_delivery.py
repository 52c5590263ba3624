"""Delivery through real HTTP to a local receiver: signing, retries, timeouts, disabling."""

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support import wait_until
from tests.webhooks.conftest import EVENT, OTHER_EVENT
from webhooks.models import Delivery, DeliveryAttempt, Endpoint, Event, new_secret


def _deliveries(client, endpoint_id, **params):
    response = client.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries", params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_delivery_is_signed_per_standard_webhooks_and_verifies(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish
):
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    event = publish(buyer_client.account, n=42, price="12.50")

    assert deliver_now() == 1
    (request,) = webhook_receiver.wait_for(1)
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert "BackOffice-Webhooks" in request.headers["user-agent"]
    assert request.headers["webhook-id"] == event.public_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert payload == {
        "id": event.public_id,
        "type": EVENT,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": {"n": 42, "price": "12.50"},
    }
    # Another secret, or a tampered body, does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(request.body.replace(b"42", b"43"), request.headers)

    (delivery,) = _deliveries(buyer_client, endpoint["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["event"]["id"] == event.public_id
    assert [a["status_code"] for a in delivery["attempts"]] == [200]


def test_only_subscribed_endpoints_of_the_recipients_get_the_event(
    make_client, receiver_factory, deliver_now, register_endpoint, publish
):
    alice, bob = make_client("buyer"), make_client("buyer")
    all_types, only_other, bobs = receiver_factory(), receiver_factory(), receiver_factory()
    register_endpoint(alice, all_types.url, event_types=["*"])
    register_endpoint(alice, only_other.url, event_types=[OTHER_EVENT])
    register_endpoint(bob, bobs.url)

    publish(alice.account, EVENT)
    publish(alice.account, OTHER_EVENT)
    assert deliver_now() == 3

    assert [r.json()["type"] for r in all_types.wait_for(2)] == [EVENT, OTHER_EVENT]
    assert [r.json()["type"] for r in only_other.wait_for(1)] == [OTHER_EVENT]
    assert bobs.requests == []


def test_receiver_failing_three_times_then_succeeding_gives_one_success_and_four_attempts(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish, fast_retries
):
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    webhook_receiver.script([(500, None, 0), (502, None, 0), (400, None, 0)])
    event = publish(buyer_client.account)

    assert deliver_now() == 4
    requests = webhook_receiver.wait_for(4)
    assert len(requests) == 4
    assert {r.headers["webhook-id"] for r in requests} == {event.public_id}
    (delivery,) = _deliveries(buyer_client, endpoint["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 4
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 502, 400, 200]
    assert [a["error"] for a in delivery["attempts"]] == ["HTTP 500", "HTTP 502", "HTTP 400", ""]
    assert all(a["duration_ms"] >= 0 for a in delivery["attempts"])
    assert DeliveryAttempt.objects.count() == 4


def test_retries_follow_the_schedule_in_the_database(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = [timedelta(seconds=300), timedelta(seconds=600)]
    settings.WEBHOOKS_RETRY_JITTER = 0.2
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    webhook_receiver.respond(500)
    publish(buyer_client.account)
    before = timezone.now()

    assert deliver_now() == 1
    assert deliver_now() == 0  # the retry is not due yet
    (delivery,) = _deliveries(buyer_client, endpoint["id"])
    assert delivery["status"] == "pending"
    wait = (Delivery.objects.get().next_attempt_at - before).total_seconds()
    assert 300 * 0.8 - 1 <= wait <= 300 * 1.2 + 1


def test_after_the_last_attempt_the_delivery_is_failed_and_can_be_redelivered(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = [timedelta(seconds=0), timedelta(seconds=0)]
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    webhook_receiver.script([(500, None, 0)] * 3)
    event = publish(buyer_client.account)

    assert deliver_now() == 3
    (delivery,) = _deliveries(buyer_client, endpoint["id"])
    assert delivery["status"] == "failed"
    assert delivery["next_attempt_at"] is None

    response = buyer_client.post(f"/api/v1/webhook-deliveries/{delivery['id']}/redeliver")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    assert deliver_now() == 1
    requests = webhook_receiver.wait_for(4)
    assert requests[-1].headers["webhook-id"] == event.public_id
    (delivery,) = _deliveries(buyer_client, endpoint["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 4


def test_a_hanging_receiver_times_out_and_is_retried(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish, fast_retries, settings
):
    settings.WEBHOOKS_TIMEOUT = timedelta(seconds=0.5)
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    webhook_receiver.respond(200, delay=30)  # hangs far beyond the timeout
    publish(buyer_client.account)

    started = time.monotonic()
    assert deliver_now() == 2
    assert time.monotonic() - started < 5
    assert len(webhook_receiver.wait_for(2)) == 2
    (delivery,) = _deliveries(buyer_client, endpoint["id"])
    assert delivery["status"] == "succeeded"
    first, second = delivery["attempts"]
    assert first["status_code"] is None
    assert "Timed out after 0.5 s" in first["error"]
    assert 400 <= first["duration_ms"] < 3000
    assert second["status_code"] == 200


def test_a_receiver_dripping_its_answer_is_cut_at_the_total_deadline(webhook_receiver, settings):
    from webhooks import http

    webhook_receiver.respond(200, delay=30)
    started = time.monotonic()
    result = http.post(
        webhook_receiver.url,
        body=b"{}",
        headers={},
        allow_private=True,
        connect_timeout=3,
        total_timeout=0.3,
        max_body=1024,
    )
    assert time.monotonic() - started < 3
    assert result.status_code is None
    assert result.error.startswith("Timed out")


def test_retry_after_is_honoured_on_503_and_429_and_capped(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = [timedelta(seconds=5), timedelta(seconds=5), timedelta(seconds=5)]
    settings.WEBHOOKS_RETRY_JITTER = 0
    settings.WEBHOOKS_RETRY_AFTER_MAX = timedelta(seconds=3600)
    register_endpoint(buyer_client, webhook_receiver.url)
    http_date = (timezone.now() + timedelta(seconds=600)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    cases = [
        (503, {"Retry-After": "120"}, 120),
        (429, {"Retry-After": http_date}, 600),
        (503, {"Retry-After": "999999"}, 3600),
        (500, {"Retry-After": "120"}, 5),
    ]
    for status, headers, expected in cases:
        Delivery.objects.all().delete()
        webhook_receiver.respond(status, headers)
        publish(buyer_client.account)
        before = timezone.now()
        assert deliver_now() == 1
        wait = (Delivery.objects.get().next_attempt_at - before).total_seconds()
        assert expected - 2 <= wait <= expected + 2, (status, headers, wait)


def test_retry_after_delays_the_next_attempt_in_real_time(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish, fast_retries
):
    register_endpoint(buyer_client, webhook_receiver.url)
    webhook_receiver.respond(503, {"Retry-After": "1"})
    publish(buyer_client.account)

    assert deliver_now() == 1
    assert deliver_now() == 0  # not before the receiver asked
    wait_until(deliver_now, 5, "the retry never came due")
    first, second = webhook_receiver.wait_for(2)
    assert second.received_monotonic - first.received_monotonic >= 0.95


def test_410_gone_disables_the_endpoint_and_tells_the_owner(
    buyer_client, receiver_factory, deliver_now, register_endpoint, publish
):
    gone, other = receiver_factory(), receiver_factory()
    dead = register_endpoint(buyer_client, gone.url)
    register_endpoint(buyer_client, other.url, event_types=["webhook_endpoint.disabled"])
    gone.respond(410)
    publish(buyer_client.account)

    deliver_now()
    assert len(gone.wait_for(1)) == 1
    endpoint = buyer_client.get(f"/api/v1/webhook-endpoints/{dead['id']}").json()
    assert endpoint["enabled"] is False
    assert "410" in endpoint["disabled_reason"]
    assert endpoint["disabled_at"] is not None

    (notice,) = other.wait_for(1)
    body = notice.json()
    assert body["type"] == "webhook_endpoint.disabled"
    assert body["data"]["endpoint"]["id"] == dead["id"]
    assert "410" in body["data"]["reason"]
    feed = buyer_client.get("/api/v1/events", {"type": "webhook_endpoint.disabled"}).json()["results"]
    assert [e["id"] for e in feed] == [body["id"]]

    # A disabled endpoint receives nothing more.
    publish(buyer_client.account)
    deliver_now()
    assert len(gone.requests) == 1
    # The second event is recorded as failed for the disabled endpoint (the notice about it is not).
    statuses = [d["status"] for d in _deliveries(buyer_client, dead["id"])]
    assert statuses == ["failed", "failed"]

    # The owner re-enables it and recovers what failed meanwhile.
    response = buyer_client.patch(f"/api/v1/webhook-endpoints/{dead['id']}", {"enabled": True}, format="json")
    assert response.status_code == 200
    assert response.json()["enabled"] is True
    assert response.json()["disabled_reason"] == ""
    since = (timezone.now() - timedelta(minutes=5)).isoformat()
    response = buyer_client.post(
        f"/api/v1/webhook-endpoints/{dead['id']}/redeliver-failed", {"since": since}, format="json"
    )
    assert response.status_code == 202, response.content
    assert response.json() == {"count": 2}
    deliver_now()
    assert len(gone.wait_for(3)) == 3


def test_an_endpoint_failing_for_the_configured_period_is_disabled(
    buyer_client, receiver_factory, deliver_now, register_endpoint, publish, settings
):
    settings.WEBHOOKS_DISABLE_AFTER = timedelta(seconds=3600)
    failing, other = receiver_factory(), receiver_factory()
    bad = register_endpoint(buyer_client, failing.url)
    register_endpoint(buyer_client, other.url, event_types=["webhook_endpoint.disabled"])
    failing.script([(500, None, 0)] * 5)

    publish(buyer_client.account)
    deliver_now()
    endpoint = Endpoint.objects.get(pk=bad["id"])
    assert endpoint.enabled is True
    assert endpoint.failing_since is not None

    # Still failing more than an hour after the first failure: disabled.
    Endpoint.objects.filter(pk=bad["id"]).update(failing_since=timezone.now() - timedelta(seconds=3601))
    publish(buyer_client.account)
    deliver_now()
    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert "failed since" in endpoint.disabled_reason
    (notice,) = other.wait_for(1)
    assert notice.json()["data"]["endpoint"]["id"] == bad["id"]


def test_a_success_ends_the_failure_streak(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish, fast_retries
):
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    webhook_receiver.respond(500)
    publish(buyer_client.account)
    deliver_now()
    assert Endpoint.objects.get(pk=endpoint["id"]).failing_since is None


def test_owner_disabling_an_endpoint_stops_deliveries_without_a_notice(
    buyer_client, receiver_factory, deliver_now, register_endpoint, publish
):
    first, second = receiver_factory(), receiver_factory()
    endpoint = register_endpoint(buyer_client, first.url)
    register_endpoint(buyer_client, second.url)
    response = buyer_client.patch(f"/api/v1/webhook-endpoints/{endpoint['id']}", {"enabled": False}, format="json")
    assert response.json()["enabled"] is False

    publish(buyer_client.account)
    deliver_now()
    assert first.requests == []
    assert [r.json()["type"] for r in second.wait_for(1)] == [EVENT]


def test_rotation_signs_with_both_secrets_for_a_day(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish
):
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    old_secret = endpoint["secret"]
    response = buyer_client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
    assert response.status_code == 200
    new_secret = response.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    expires = response.json()["previous_secret_expires_at"]
    assert expires is not None

    publish(buyer_client.account)
    deliver_now()
    (request,) = webhook_receiver.wait_for(1)
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret, signature in zip([new_secret, old_secret], signatures, strict=True):
        Webhook(secret).verify(request.body, {**request.headers, "webhook-signature": signature})
    Webhook(old_secret).verify(request.body, request.headers)
    Webhook(new_secret).verify(request.body, request.headers)

    # After the overlap only the new secret signs.
    Endpoint.objects.filter(pk=endpoint["id"]).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    publish(buyer_client.account)
    deliver_now()
    request = webhook_receiver.wait_for(2)[1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(request.body, request.headers)


def test_redirects_are_not_followed_and_the_response_is_capped(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish
):
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    webhook_receiver.respond(302, {"Location": webhook_receiver.url_for("/elsewhere")})
    publish(buyer_client.account)
    deliver_now()
    assert [r.path for r in webhook_receiver.requests] == ["/webhook"]
    (delivery,) = _deliveries(buyer_client, endpoint["id"])
    assert delivery["status"] == "pending"
    assert delivery["attempts"][0]["status_code"] == 302

    Delivery.objects.all().delete()
    webhook_receiver.respond(200, body=b"x" * 5000)
    publish(buyer_client.account)
    deliver_now()
    (delivery,) = _deliveries(buyer_client, endpoint["id"])
    assert delivery["attempts"][0]["response_body"] == "x" * 1024


def test_audience_check_stops_deliveries_and_feed_at_once(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish, settings
):
    from webhooks.registry import audience_check_register

    revoked: set[int] = set()
    audience_check_register("test_audience.", lambda event_type, data, account_ids: set(account_ids) - revoked)
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    webhook_receiver.respond(500)
    publish(buyer_client.account, "test_audience.thing")
    settings.WEBHOOKS_RETRY_SCHEDULE = [timedelta(seconds=600)]
    assert deliver_now() == 1  # fails once, a retry is queued

    revoked.add(buyer_client.account.pk)
    Delivery.objects.update(next_attempt_at=timezone.now())  # ten minutes later
    assert deliver_now() == 1  # the queued retry is consulted and cancelled, not sent
    assert len(webhook_receiver.requests) == 1
    (delivery,) = _deliveries(buyer_client, endpoint["id"])
    assert delivery["status"] == "cancelled"
    assert buyer_client.get("/api/v1/events").json()["results"] == []

    publish(buyer_client.account, "test_audience.thing")
    deliver_now()
    assert len(webhook_receiver.requests) == 1


def test_ping_reaches_only_that_endpoint(buyer_client, receiver_factory, deliver_now, register_endpoint):
    pinged, other = receiver_factory(), receiver_factory()
    endpoint = register_endpoint(buyer_client, pinged.url)
    register_endpoint(buyer_client, other.url)

    response = buyer_client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/ping")
    assert response.status_code == 202, response.content
    assert response.json()["event"]["type"] == "webhook.ping"
    deliver_now()
    (request,) = pinged.wait_for(1)
    assert request.json()["type"] == "webhook.ping"
    Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert other.requests == []
    assert buyer_client.get("/api/v1/events").json()["results"] == []


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_sends_nothing_and_a_committed_one_arrives(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish
):
    register_endpoint(buyer_client, webhook_receiver.url)

    with pytest.raises(RuntimeError), transaction.atomic():
        publish(buyer_client.account, n=1)
        raise RuntimeError("the change failed")
    assert deliver_now() == 0
    assert Event.objects.count() == 0

    with transaction.atomic():
        publish(buyer_client.account, n=2)
    deliver_now()
    (request,) = webhook_receiver.wait_for(1)
    assert request.json()["data"] == {"n": 2}
    assert len(webhook_receiver.requests) == 1


def test_the_verification_example_in_the_docs_accepts_a_real_delivery(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish
):
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    example = docs.split("### Verifying in Python", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(example, "docs/webhooks.md", "exec"), namespace)
    verify_webhook = namespace["verify_webhook"]

    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    event = publish(buyer_client.account)
    deliver_now()
    (request,) = webhook_receiver.wait_for(1)
    assert verify_webhook(endpoint["secret"], request.body, request.headers)["id"] == event.public_id
    assert verify_webhook(endpoint["secret"], request.body + b" ", request.headers) is None
