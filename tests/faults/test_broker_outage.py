"""A broker outage during writes: a real `celery worker` and `celery beat` on a private
redis-server that the test stops for 20 s and starts again. Every write commits, every event
arrives once Redis is back, and nothing is restarted by hand."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from config.celery import app as celery_app
from core.periodic import schedules_install
from tests.faults.test_faults import ROOT
from tests.receiver import WebhookReceiver
from tests.support import child_database_url, free_port, wait_until
from webhooks.models import Event

WRITES = 300
OUTAGE_SECONDS = 20.0


class PrivateRedis:
    """A redis-server of this test's own, on a free port, that it may stop and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-outage-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, 10, "the private redis-server never answered")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        # Killed, not shut down cleanly: whatever it held (queued messages) is gone.
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_redis() -> Any:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    redis = PrivateRedis()
    redis.start()
    yield redis
    redis.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_redis_stopped_for_20_s_during_300_writes_loses_nothing_and_needs_no_restart(
    make_client, private_redis, settings
):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    schedules_install()  # the sweeper's schedule, as migrate installs it
    receiver = WebhookReceiver(keep_alive=True).start()
    seller, buyer = make_client("seller"), make_client("buyer")
    assert seller.post("/api/v1/authorized-buyers", {"buyer": buyer.account.ref}, format="json").status_code == 201
    assert buyer.post("/api/v1/webhook-endpoints", {"url": receiver.url}, format="json").status_code == 201

    env = {
        **os.environ,
        "DATABASE_URL": child_database_url(),
        "REDIS_URL": private_redis.url,
        "WEBHOOKS_ALLOW_PRIVATE_URLS": "true",
        "WEBHOOKS_SWEEP_GRACE": "2",
    }
    name = f"outage-{uuid.uuid4().hex[:8]}@localhost"
    logs = Path(tempfile.mkdtemp(prefix="outage-logs-"))
    # The webhooks worker exactly as docker-compose.yml runs it, and beat for the sweeper.
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "webhooks,default",
            "--pool",
            "threads",
            "--concurrency",
            "8",
            "-n",
            name,
            "-l",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(logs / "worker.log", "wb"),  # noqa: SIM115 - the process writes it until killed
        stderr=subprocess.STDOUT,
    )
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "INFO", "-s", str(logs / "beat-schedule")],
        cwd=ROOT,
        env=env,
        stdout=open(logs / "beat.log", "wb"),  # noqa: SIM115 - the process writes it until killed
        stderr=subprocess.STDOUT,
    )
    broker = Celery("backoffice", broker=private_redis.url, set_as_current=False)
    broker.config_from_object(celery_app.conf)
    broker.conf.broker_url = private_redis.url
    broker.conf.broker_connection_timeout = 1
    try:
        wait_until(lambda: broker.control.ping(destination=[name], timeout=0.5), 60, "the worker never answered a ping")
        broker.set_current()  # the API process publishes to the private broker
        codes = []
        deal_ids = []
        started = time.monotonic()
        stopped_at = restarted_at = None
        for n in range(WRITES):
            if n == 50:
                private_redis.stop()
                stopped_at = time.monotonic()
            if stopped_at and not restarted_at and time.monotonic() - stopped_at >= OUTAGE_SECONDS:
                private_redis.start()
                restarted_at = time.monotonic()
            response = seller.post(
                "/api/v1/deals",
                {
                    "name": f"deal {n}",
                    "currency": "GBP",
                    "discount": {"type": "flat", "amount": "1"},
                    "items": [{"id": "sku", "name": "Item", "price": "10.00"}],
                },
                format="json",
            )
            codes.append(response.status_code)
            if response.status_code == 201:
                deal_ids.append(response.json()["id"])
            # About ten writes a second, so that the outage falls in the middle of them.
            time.sleep(max(0.0, started + (n + 1) / 10 - time.monotonic()))
        assert restarted_at is not None, "the writes ended before the outage did"
        assert codes == [201] * WRITES  # every write committed, outage or not

        events = Event.objects.filter(type="deal.created")
        assert events.count() == WRITES
        expected = set(events.values_list("public_id", flat=True))
        wait_until(
            lambda: expected <= {r.headers["webhook-id"] for r in receiver.requests},
            120,
            "not every event was delivered after Redis came back",
            interval=0.5,
        )
        assert worker.poll() is None, "the worker exited"
        assert beat.poll() is None, "beat exited"
        # The consumer is back: it answers the ping the compose health check sends.
        assert broker.control.ping(destination=[name], timeout=2)
    finally:
        celery_app.set_current()
        for process in (worker, beat):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        receiver.stop()
    log = (logs / "worker.log").read_text(errors="replace")
    assert "Unrecoverable error" not in log
    shutil.rmtree(logs, ignore_errors=True)
