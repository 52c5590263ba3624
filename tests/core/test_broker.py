"""Messages go to Redis through kombu's transport with one client per connection pool."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings

from config.celery import app
from core.broker import Channel, Transport


def test_the_broker_is_kombus_redis_transport_keeping_one_client_per_pool() -> None:
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        channel = connection.default_channel
        assert isinstance(channel, Channel)
        first = channel._create_client()
        assert channel._create_client() is first
        channel._pool = None  # as after a reconnect: a new pool gets a new client
        assert channel._create_client() is not first
        assert channel._create_client(asynchronous=True) is not channel._create_client(asynchronous=True)


def test_a_task_message_sent_through_it_reaches_its_queue(settings: Any) -> None:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    before = client.llen("default")
    with app.connection_for_write() as connection:
        for _ in range(3):
            app.send_task("core.tasks.idempotency_records_purge", connection=connection, queue="default")
    try:
        assert client.llen("default") == before + 3
    finally:
        for _ in range(3):
            client.rpop("default")


def test_the_embedded_demo_keeps_its_in_memory_broker() -> None:
    """Only a ``redis://`` broker is sent through this transport; the demo has none."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CELERY_BROKER_URL, getattr(settings, 'CELERY_BROKER_TRANSPORT', None))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
    ).stdout.split()
    assert out == ["memory://", "None"]
