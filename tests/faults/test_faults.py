"""Faults the platform must ride out: a dropped database connection, Redis down during API
writes, a Celery worker killed in the middle of a delivery. Real PostgreSQL, Redis, HTTP,
and a real `celery -A config worker` process.

Covered elsewhere, not repeated here:
- broker lost for a committed event (service level): tests/webhooks/test_reliability.py::
  test_event_committed_while_the_broker_is_unreachable_is_delivered_by_the_sweeper
- a claim whose worker died, taken over when its lease ends (in-process):
  tests/webhooks/test_reliability.py::test_a_claim_whose_worker_died_is_taken_over_when_its_lease_ends
- grants exactly at the expiry instant: tests/entitlements/test_services.py::
  test_grants_in_force_at_the_exact_instant and tests/entitlements/test_tasks.py::
  test_expiry_sweep_marks_a_trial_expired_exactly_at_its_end
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from celery import Celery
from django.conf import settings as django_settings
from django.db import connection
from werkzeug.test import Client

from config.celery import app as celery_app
from config.wsgi import application
from tests.deals.support import deal_body
from tests.support import child_database_url, free_port, wait_until
from webhooks.models import Delivery, DeliveryAttempt, Event

ROOT = Path(__file__).resolve().parents[2]


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_dropped_database_connection_recovers_on_the_next_request(make_client):
    # The WSGI application itself, as gunicorn calls it: connections go back to the pool after each request.
    client = Client(application)
    quant = make_client("quant")
    headers = {"Authorization": f"Api-Key {quant.key}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    # A busy process: the pool holds several idle connections.
    pool = connection.pool
    assert pool is not None
    borrowed = [pool.getconn() for _ in range(8)]
    for conn in borrowed:
        pool.putconn(conn)

    # PostgreSQL restarts, or a proxy drops idle connections: every pooled connection is dead.
    # The timeout makes each termination wait until the session has ended, as after a restart.
    with psycopg.connect(child_database_url().replace("postgres://", "postgresql://", 1), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchall()
    assert killed, "no pooled connection to drop"
    assert all(ended for (ended,) in killed)

    started = time.monotonic()
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert time.monotonic() - started < 5  # well inside DB_POOL_TIMEOUT
    assert response.json["ref"] == quant.account.ref
    assert (
        client.post(
            "/api/v1/webhook-endpoints", json={"url": "https://93.184.215.14/hooks"}, headers=headers
        ).status_code
        == 201
    )


# --- Redis down --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_api_writes_commit_and_their_events_arrive_once_it_is_back(
    make_client, catalog, webhook_receiver, deliver_now, settings
):
    settings.OPS_NOTIFICATION_EMAILS = ["ops@example.com"]  # a pending request also enqueues an email
    seller, buyer, quant = make_client("seller"), make_client("buyer"), make_client("quant")
    assert seller.post("/api/v1/authorized-buyers", {"buyer": buyer.account.ref}, format="json").status_code == 201
    endpoint = buyer.post("/api/v1/webhook-endpoints", {"url": webhook_receiver.url}, format="json").json()
    deliver_now()
    webhook_receiver.clear()

    # Redis goes away: the broker and the cache (rate limits) both point at a closed port.
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": dead}}
    dead_broker = Celery("backoffice", broker=dead, set_as_current=False)
    dead_broker.conf.update(broker_connection_retry=False, broker_connection_timeout=1)
    dead_broker.set_current()
    try:
        started = time.monotonic()
        created = seller.post("/api/v1/deals", deal_body(), format="json")
        assert created.status_code == 201, created.content
        requested = quant.post("/api/v1/access-requests", {"dataset": "BTC", "frequencies": ["1h"]}, format="json")
        assert requested.status_code == 201, requested.content
        assert time.monotonic() - started < 10
    finally:
        celery_app.set_current()
    deal_id = created.json()["id"]
    event = Event.objects.get(type="deal.created", data__id=deal_id)
    assert event.dispatched_at is None  # committed, never handed to the broker
    assert webhook_receiver.requests == []

    # Redis is back: the sweeper finds the undispatched outbox row and delivers it.
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": django_settings.REDIS_URL}}
    assert deliver_now() >= 1
    (request,) = webhook_receiver.wait_for(1)
    assert request.headers["webhook-id"] == event.public_id
    assert request.json()["data"]["id"] == deal_id
    assert Delivery.objects.get(endpoint_id=endpoint["id"], event=event).status == "succeeded"


def test_with_the_cache_down_reads_are_served_unthrottled_and_ops_can_still_log_in(
    quant_client, client, django_user_model, settings, caplog
):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    settings.ADMIN_LOGIN_MAX_FAILURES = 1
    assert quant_client.get("/api/v1/me").status_code == 200
    assert "Rate limit 'api_key' not enforced: the cache is unreachable" in caplog.text

    django_user_model.objects.create_superuser("ops", "ops@example.com", "right-password-123")
    assert client.post("/admin/login/", {"username": "ops", "password": "wrong"}).status_code == 200
    response = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": "right-password-123"})
    assert response.status_code == 302


# --- a worker killed mid-delivery ---------------------------------------------------------------


@pytest.fixture
def worker_process(webhook_receiver: Any) -> Any:
    """Start a real `celery -A config worker` on the test database and Redis; killed after the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def _start(**env: str) -> tuple[subprocess.Popen[bytes], str]:
        name = f"faults-{uuid.uuid4().hex[:8]}@localhost"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-n", name, "-l", "INFO"],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": child_database_url(),
                "REDIS_URL": django_settings.REDIS_URL,
                "WEBHOOKS_ALLOW_PRIVATE_URLS": "true",
                **env,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        wait_until(
            lambda: celery_app.control.ping(destination=[name], timeout=0.5) or process.poll() is not None,
            timeout=60,
            message="the worker never answered a ping",
        )
        assert process.poll() is None, "the worker exited at start"
        return process, name

    yield _start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_during_a_delivery_loses_nothing(
    make_client, webhook_receiver, worker_process, deliver_now, settings
):
    seller, buyer = make_client("seller"), make_client("buyer")
    assert seller.post("/api/v1/authorized-buyers", {"buyer": buyer.account.ref}, format="json").status_code == 201
    endpoint = buyer.post("/api/v1/webhook-endpoints", {"url": webhook_receiver.url}, format="json").json()
    deliver_now()
    webhook_receiver.clear()

    celery_app.control.purge()  # messages other tests left without a worker
    # The worker's lease: max(WEBHOOKS_LEASE_SECONDS, 2 x WEBHOOKS_TIMEOUT) = 6 s.
    worker, _ = worker_process(WEBHOOKS_LEASE_SECONDS="1", WEBHOOKS_TIMEOUT="3")
    webhook_receiver.respond(200, delay=60)  # the receiver hangs on the first request

    created = seller.post("/api/v1/deals", deal_body(), format="json")
    assert created.status_code == 201
    event = Event.objects.get(type="deal.created", data__id=created.json()["id"])
    (first,) = webhook_receiver.wait_for(1, timeout=30)  # the worker is inside the delivery now
    assert first.headers["webhook-id"] == event.public_id

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    delivery = Delivery.objects.get(endpoint_id=endpoint["id"], event=event)
    assert delivery.status == "pending"
    assert delivery.lease_token  # still claimed by the dead worker
    assert not DeliveryAttempt.objects.filter(delivery=delivery).exists()

    # Nobody may take it over while the dead worker's lease runs; the sweeper does once it ends.
    assert deliver_now() == 0
    wait_until(lambda: deliver_now() > 0, timeout=30, message="the sweeper never took the delivery over", interval=0.2)
    second = webhook_receiver.wait_for(2)[1]
    assert second.headers["webhook-id"] == event.public_id  # the same id: receivers deduplicate
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1
