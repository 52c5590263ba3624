"""Delivery under concurrency: many requests in flight per process, connections reused, a
per-endpoint share for a hanging receiver, the sweeper never racing the fast path, and
deletes or de-authorisations racing deliveries in flight. Real PostgreSQL, HTTP and threads."""

import threading
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from deals import services as deal_services
from tests.deals.support import AUTHORIZED_BUYERS
from tests.support import wait_until
from tests.webhooks.conftest import EVENT
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, Endpoint, Event
from webhooks.sender import sender


def _fast_path(event):
    """What the on-commit task does in a worker: fan out, start, and hand the requests to the process sender."""
    sender.send_started(services.event_fanout_start(event_id=event.pk))


def _idle():
    return sender.in_flight() == 0


@pytest.mark.django_db(transaction=True)
def test_many_deliveries_are_in_flight_at_once_over_reused_connections(
    make_client, receiver_factory, register_endpoint, publish, settings
):
    settings.WEBHOOKS_ENDPOINT_CONCURRENCY = 4
    receiver = receiver_factory(keep_alive=True)
    buyers = [make_client("buyer") for _ in range(8)]
    for buyer in buyers:
        register_endpoint(buyer, receiver.url)
    for _ in range(3):
        receiver.respond(200, delay=0.5)  # the first requests are slow: the rest must not queue behind them
    with transaction.atomic():
        event = services.event_publish(event_type=EVENT, data={"n": 1}, recipients=[b.account for b in buyers])

    _fast_path(event)
    requests = receiver.wait_for(8, timeout=10)
    # Eight deliveries, three of them answered after 0.5 s each: sent one after the other, the
    # last would arrive at least 1.5 s after the first. Sent at once, they all arrive together.
    arrivals = sorted(r.received_monotonic for r in requests)
    assert arrivals[-1] - arrivals[0] < 1.4
    wait_until(_idle, 10, "the sender never recorded its attempts")
    assert Delivery.objects.filter(event=event, status="succeeded").count() == 8
    assert sorted(r.headers["webhook-id"] for r in requests) == [event.public_id] * 8

    # The connections stay open: one event after another to the same host all go over one of them.
    ports = {r.client_port for r in requests}
    for n in range(5):
        with transaction.atomic():
            again = services.event_publish(event_type=EVENT, data={"n": n}, recipients=[buyers[0].account])
        _fast_path(again)
        wait_until(_idle, 10, "the sender never recorded its attempt")
    later = receiver.wait_for(13, timeout=10)[8:]
    assert len({r.client_port for r in later}) == 1
    assert {r.client_port for r in later} <= ports


@pytest.mark.django_db(transaction=True)
def test_a_hanging_receiver_holds_only_its_share_and_delays_no_one_else(
    make_client, receiver_factory, register_endpoint, settings
):
    settings.WEBHOOKS_ENDPOINT_CONCURRENCY = 2
    settings.WEBHOOKS_ENDPOINT_BACKLOG = 8
    settings.WEBHOOKS_TIMEOUT = timedelta(seconds=1)
    hanging, healthy = receiver_factory(), receiver_factory()
    slow_buyer, buyer = make_client("buyer"), make_client("buyer")
    register_endpoint(slow_buyer, hanging.url)
    endpoint = register_endpoint(buyer, healthy.url)
    for _ in range(100):
        hanging.respond(200, delay=30)

    events = []
    for n in range(30):
        with transaction.atomic():
            stuck = services.event_publish(event_type=EVENT, data={"n": n}, recipients=[slow_buyer.account])
            event = services.event_publish(event_type=EVENT, data={"n": n}, recipients=[buyer.account])
        events.append(event)
        _fast_path(stuck)
        _fast_path(event)

    started = time.monotonic()
    got = healthy.wait_for(30, timeout=10)
    assert time.monotonic() - started < 5
    assert sorted(r.headers["webhook-id"] for r in got) == sorted(e.public_id for e in events)
    # The hanging receiver never has more than its two slots: a third request comes only when one timed out.
    arrivals = sorted(r.received_monotonic for r in hanging.requests)
    assert 2 <= len(arrivals) < 30
    assert all(later - earlier >= 0.9 for earlier, later in zip(arrivals, arrivals[2:], strict=False))
    succeeded = Delivery.objects.filter(endpoint_id=endpoint["id"], status="succeeded")
    wait_until(lambda: succeeded.count() == 30, 5, "the healthy endpoint's deliveries were not recorded")
    # Its share works through the few deliveries waiting in memory, two at a time; the others
    # went back to the database, due again later, holding nothing meanwhile.
    wait_until(_idle, 20, "the hanging receiver's attempts never timed out")
    timed_out = DeliveryAttempt.objects.filter(delivery__endpoint__account=slow_buyer.account)
    assert timed_out.count() == len(hanging.requests) < 30
    assert all("Timed out" in a.error for a in timed_out)
    waiting = Delivery.objects.filter(endpoint__account=slow_buyer.account, status="pending", lease_token="")
    assert waiting.count() == 30


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_leaves_young_events_and_claimed_deliveries_to_the_fast_path(
    buyer_client, webhook_receiver, register_endpoint, publish, settings
):
    settings.WEBHOOKS_SWEEP_GRACE = timedelta(seconds=10)
    register_endpoint(buyer_client, webhook_receiver.url)
    with transaction.atomic():
        event = publish(buyer_client.account)
    swept = []
    # Just committed: its dispatch message is on its way, the sweeper leaves it.
    assert services.webhooks_sweep(deliver=lambda *claim: swept.append(claim)) == services.SweepResult(0, 0)

    claims = services.event_fanout(event_id=event.pk)  # the fast path: deliveries born claimed
    settings.WEBHOOKS_SWEEP_GRACE = timedelta(seconds=0)
    assert services.webhooks_sweep(deliver=lambda *claim: swept.append(claim)) == services.SweepResult(0, 0)
    assert swept == []
    sender.send(claims, wait=True)
    (request,) = webhook_receiver.wait_for(1)
    assert request.headers["webhook-id"] == event.public_id


@pytest.mark.django_db(transaction=True)
def test_under_a_backlog_the_sweeper_and_late_fast_path_messages_send_each_delivery_once(
    make_client, receiver_factory, register_endpoint, publish, settings
):
    settings.WEBHOOKS_SWEEP_GRACE = timedelta(seconds=5)
    receivers = [receiver_factory(keep_alive=True) for _ in range(3)]
    buyers = [make_client("buyer") for _ in receivers]
    for buyer, receiver in zip(buyers, receivers, strict=True):
        register_endpoint(buyer, receiver.url)
    events = []
    for n in range(40):
        with transaction.atomic():
            events.append(publish(buyers[n % 3].account, n=n))
    # The workers are behind: the first half of the events is older than the grace period.
    Event.objects.filter(pk__in=[e.pk for e in events[:20]]).update(created_at=timezone.now() - timedelta(seconds=60))

    errors = []

    def late_fast_path():
        try:
            for event in events:
                _fast_path(event)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def sweeper():
        try:
            for _ in range(20):
                claims: list[services.Claim] = []
                services.webhooks_sweep(deliver=lambda i, t, found=claims: found.append((i, t)))
                sender.send(claims)
                close_old_connections()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=f) for f in (late_fast_path, sweeper, sweeper)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    wait_until(lambda: Delivery.objects.filter(status="succeeded").count() == 40, 20, "not every delivery arrived")
    wait_until(_idle, 10, "the sender never recorded its attempts")

    attempts = Counter(DeliveryAttempt.objects.values_list("delivery_id", flat=True))
    assert len(attempts) == 40 and set(attempts.values()) == {1}
    seen = Counter(r.headers["webhook-id"] for receiver in receivers for r in receiver.requests)
    assert sorted(seen) == sorted(e.public_id for e in events)
    assert set(seen.values()) == {1}


def _keep_publishing(make_event, stop, errors):
    def run():
        try:
            while not stop.is_set():
                with transaction.atomic():
                    event = make_event()
                _fast_path(event)
                close_old_connections()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_deleting_an_endpoint_while_deliveries_are_in_flight_answers_204_and_nothing_arrives_after(
    make_client, receiver_factory, register_endpoint
):
    for round_ in range(4):
        buyer = make_client("buyer")
        receiver = receiver_factory(keep_alive=True)
        for _ in range(1000):
            receiver.respond(200, delay=0.02)  # every request is on the wire for a while
        endpoint = register_endpoint(buyer, receiver.url)
        stop, errors = threading.Event(), []
        publishers = [
            _keep_publishing(
                lambda b=buyer, r=round_: services.event_publish(
                    event_type=EVENT, data={"r": r}, recipients=[b.account]
                ),
                stop,
                errors,
            )
            for _ in range(3)
        ]
        try:
            receiver.wait_for(5, timeout=20)
            response = buyer.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}")
            answered = time.monotonic()
        finally:
            stop.set()
            for thread in publishers:
                thread.join(timeout=30)
        assert response.status_code == 204, response.content
        assert not errors, errors
        wait_until(_idle, 20, "the sender never went idle")
        assert not Endpoint.objects.filter(pk=endpoint["id"]).exists()
        assert not Delivery.objects.filter(endpoint_id=endpoint["id"]).exists()
        late = [r for r in receiver.requests if r.received_monotonic > answered]
        assert late == [], f"{len(late)} deliveries arrived after the delete answered"


@pytest.mark.django_db(transaction=True)
def test_de_authorising_a_buyer_while_deliveries_are_in_flight_answers_204_and_nothing_arrives_after(
    make_client, receiver_factory, register_endpoint
):
    seller = make_client("seller")
    for _ in range(3):
        buyer = make_client("buyer")
        assert seller.post(AUTHORIZED_BUYERS, {"buyer": buyer.account.ref}, format="json").status_code == 201
        receiver = receiver_factory(keep_alive=True)
        for _ in range(1000):
            receiver.respond(200, delay=0.02)
        register_endpoint(buyer, receiver.url)
        stop, errors = threading.Event(), []

        def post_deal():
            deal_services.deal_create(seller=seller.account, **_deal_fields(), actor=seller.account)
            return Event.objects.filter(type="deal.created").latest("id")

        publishers = [_keep_publishing(post_deal, stop, errors) for _ in range(3)]
        try:
            receiver.wait_for(5, timeout=20)
            response = seller.delete(f"{AUTHORIZED_BUYERS}/{buyer.account.ref}")
            answered = time.monotonic()
        finally:
            stop.set()
            for thread in publishers:
                thread.join(timeout=30)
        assert response.status_code == 204, response.content
        assert not errors, errors
        wait_until(_idle, 20, "the sender never went idle")
        late = [r for r in receiver.requests if r.received_monotonic > answered]
        assert late == [], f"{len(late)} deal events reached the buyer after the de-authorisation answered"
        assert not Delivery.objects.filter(endpoint__account=buyer.account, status="pending").exists()


def _deal_fields():
    return {
        "name": "Racing bundle",
        "currency": "GBP",
        "discount": {"type": "flat", "amount": Decimal("10")},
        "items": [{"id": "sku-1", "name": "Bundle", "price": Decimal("60.00")}],
    }
