"""What survives the worst: lost broker messages, dead workers, racing workers and sweepers,
receivers that turn out to be on private addresses. Real PostgreSQL, Redis, HTTP and Celery."""

import queue
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from celery import Celery
from django.db import close_old_connections, connection, transaction

from config.celery import app as celery_app
from tests.support import free_port, wait_until
from tests.webhooks.conftest import EVENT
from webhooks import http, services, tasks
from webhooks.models import Delivery, DeliveryAttempt, Event


@pytest.mark.django_db(transaction=True)
def test_event_committed_while_the_broker_is_unreachable_is_delivered_by_the_sweeper(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish
):
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    dead_broker = Celery("backoffice", broker=f"redis://127.0.0.1:{free_port()}/0", set_as_current=False)
    dead_broker.conf.update(broker_connection_retry=False, broker_connection_timeout=1)
    dead_broker.set_current()
    try:
        started = time.monotonic()
        with transaction.atomic():
            event = publish(buyer_client.account)
        # The commit succeeded and the caller was not held up by the broker.
        assert time.monotonic() - started < 5
    finally:
        celery_app.set_current()
    assert Event.objects.filter(pk=event.pk, dispatched_at__isnull=True).exists()
    assert webhook_receiver.requests == []

    assert deliver_now() == 1
    (request,) = webhook_receiver.wait_for(1)
    assert request.headers["webhook-id"] == event.public_id
    assert Delivery.objects.get(endpoint_id=endpoint["id"]).status == "succeeded"


def test_a_claim_whose_worker_died_is_taken_over_when_its_lease_ends(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish, settings
):
    settings.WEBHOOKS_LEASE = timedelta(seconds=0.5)
    settings.WEBHOOKS_TIMEOUT = timedelta(seconds=0.25)  # a lease never ends before an attempt could have
    register_endpoint(buyer_client, webhook_receiver.url)
    event = publish(buyer_client.account)
    # A worker fans out (the deliveries are born claimed by it), then dies before sending.
    ((delivery_id, dead_workers_token),) = services.event_fanout(event_id=event.pk)
    assert services.delivery_claim(delivery_id=delivery_id) is None  # nobody else may take it

    assert deliver_now() == 0  # the lease still holds: nobody else may take it
    wait_until(deliver_now, 5, "the sweeper never took over the expired claim")
    (request,) = webhook_receiver.wait_for(1)
    assert request.headers["webhook-id"] == event.public_id

    # The broker redelivers the dead worker's task late: its stale claim sends nothing.
    tasks.delivery_attempt(delivery_id, dead_workers_token)
    assert len(webhook_receiver.requests) == 1
    assert DeliveryAttempt.objects.filter(delivery_id=delivery_id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_and_two_workers_never_attempt_a_delivery_twice(
    make_client, receiver_factory, register_endpoint, publish, settings
):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    receivers = [receiver_factory(), receiver_factory()]
    clients = [make_client("buyer"), make_client("buyer")]
    for client, receiver in zip(clients, receivers, strict=True):
        register_endpoint(client, receiver.url)
    events = []
    for n in range(20):
        for client in clients:
            with transaction.atomic():
                events.append(publish(client.account, n=n))
    expected = len(events)

    work: queue.Queue = queue.Queue()
    for event in events:  # the fast path's messages, each delivered twice by the broker
        work.put(("dispatch", event.pk))
        work.put(("dispatch", event.pk))
    stop = threading.Event()
    errors: list[BaseException] = []

    def sweeper() -> None:
        try:
            while not stop.is_set():
                services.webhooks_sweep(deliver=lambda i, t: (work.put(("attempt", i, t)), work.put(("attempt", i, t))))
                time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def worker() -> None:
        try:
            while not stop.is_set():
                try:
                    item = work.get(timeout=0.05)
                except queue.Empty:
                    continue
                if item[0] == "dispatch":
                    tasks.event_dispatch(item[1])
                else:
                    tasks.delivery_attempt(item[1], item[2])
                close_old_connections()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=f) for f in (sweeper, sweeper, worker, worker)]
    for thread in threads:
        thread.start()
    try:

        def all_succeeded() -> bool:
            assert not errors, errors
            return Delivery.objects.filter(status="succeeded").count() >= expected

        wait_until(all_succeeded, 30, "deliveries did not all succeed in time")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert not errors, errors

    assert Delivery.objects.count() == expected
    per_delivery = Counter(DeliveryAttempt.objects.values_list("delivery_id", flat=True))
    assert len(per_delivery) == expected
    assert set(per_delivery.values()) == {1}
    seen = [r.headers["webhook-id"] for receiver in receivers for r in receiver.requests]
    assert len(seen) == expected
    assert sorted(seen) == sorted(e.public_id for e in events)


@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_delivers_on_commit(buyer_client, webhook_receiver, register_endpoint, publish):
    from celery.contrib.testing.worker import start_worker

    register_endpoint(buyer_client, webhook_receiver.url)
    celery_app.control.purge()  # messages other tests left without a worker
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"):
        with transaction.atomic():
            event = publish(buyer_client.account, n=1)
            assert webhook_receiver.requests == []  # nothing leaves before the commit
        (request,) = webhook_receiver.wait_for(1, timeout=15)
    assert request.headers["webhook-id"] == event.public_id
    assert request.json()["data"] == {"n": 1}
    assert Event.objects.get(pk=event.pk).dispatched_at is not None


def test_connect_time_check_refuses_a_host_that_resolves_to_a_private_address(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish, settings
):
    # Registered while private URLs were allowed; the DNS answer (or the setting) changed since.
    endpoint = register_endpoint(buyer_client, f"http://localhost:{webhook_receiver.port}/webhook")
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    publish(buyer_client.account)

    assert deliver_now() == 1
    assert webhook_receiver.requests == []
    delivery = Delivery.objects.get(endpoint_id=endpoint["id"])
    attempt = delivery.attempts.get()
    assert attempt.status_code is None
    assert attempt.error == "Refused: 127.0.0.1 is not a public address."
    assert delivery.status == "pending"  # retried later, in case the address becomes public again


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_guarded_http_aborts_before_sending_a_byte_to_a_private_peer(webhook_receiver, host):
    result = http.post(
        f"http://{host}:{webhook_receiver.port}/webhook",
        body=b'{"secret": "data"}',
        headers={},
        allow_private=False,
        connect_timeout=3,
        total_timeout=5,
        max_body=1024,
    )
    assert result.status_code is None
    assert result.error == "Refused: 127.0.0.1 is not a public address."
    assert webhook_receiver.requests == []

    allowed = http.post(
        f"http://{host}:{webhook_receiver.port}/webhook",
        body=b"{}",
        headers={},
        allow_private=True,
        connect_timeout=3,
        total_timeout=5,
        max_body=1024,
    )
    assert allowed.status_code == 200
    assert len(webhook_receiver.wait_for(1)) == 1


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.0.0.1", False),
        ("172.31.255.255", False),
        ("192.168.0.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("fd00:ec2::254", False),
        ("fe80::1%eth0", False),
        ("0.0.0.0", False),
        ("::", False),
        ("224.0.0.251", False),
        ("233.252.0.1", False),
        ("ff0e::1", False),
        ("240.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a00:1", False),
        ("2002:a00:1::", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
    ],
)
def test_address_rules(address, allowed):
    assert http.address_allowed(address) is allowed


def test_publish_is_lazy_about_an_empty_audience(db):
    assert services.event_publish(event_type=EVENT, data={}, recipients=[]) is None


@pytest.mark.django_db(transaction=True)
def test_embedded_mode_delivers_in_process_when_the_change_commits(
    buyer_client, webhook_receiver, register_endpoint, publish
):
    # What the embedded demo runs (CELERY_TASK_ALWAYS_EAGER without DATABASE_URL): no worker, no broker.
    register_endpoint(buyer_client, webhook_receiver.url)
    was_eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        webhook_receiver.respond(500)
        with transaction.atomic():
            failing = publish(buyer_client.account, n=1)
            assert webhook_receiver.requests == []
        # The commit returned normally although the receiver failed; the attempt was made in-process.
        assert [r.headers["webhook-id"] for r in webhook_receiver.requests] == [failing.public_id]
        with transaction.atomic():
            event = publish(buyer_client.account, n=2)
        assert webhook_receiver.requests[-1].headers["webhook-id"] == event.public_id
    finally:
        celery_app.conf.task_always_eager = was_eager
    assert Delivery.objects.get(event=event).status == "succeeded"
    assert Delivery.objects.get(event=failing).status == "pending"
