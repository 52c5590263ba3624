from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import AccountClient
from tests.receiver import WebhookReceiver
from webhooks import services

# Event types no domain app registers an audience check for: the pipeline under test is the webhooks app's own.
EVENT = "access_request.created"
OTHER_EVENT = "access_grant.revoked"


@pytest.fixture
def register_endpoint() -> Callable[..., dict[str, Any]]:
    """Register an endpoint over the API and return the 201 body (with its secret)."""

    def _register(client: AccountClient, url: str, **fields: Any) -> dict[str, Any]:
        response = client.post("/api/v1/webhook-endpoints", {"url": url, **fields}, format="json")
        assert response.status_code == 201, response.content
        return response.json()

    return _register


@pytest.fixture
def publish() -> Callable[..., Any]:
    """Publish an event to ``account`` the way domain apps do."""

    def _publish(account: Any, event_type: str = EVENT, **data: Any) -> Any:
        return services.event_publish(event_type=event_type, data=data or {"n": 1}, recipients=[account])

    return _publish


@pytest.fixture
def fast_retries(settings: Any) -> None:
    """Every retry due at once (the schedule is a setting), so deliver_now() runs a whole schedule."""
    settings.WEBHOOKS_RETRY_SCHEDULE = [
        timedelta(seconds=0),
        timedelta(seconds=0),
        timedelta(seconds=0),
        timedelta(seconds=0),
        timedelta(seconds=0),
    ]
    settings.WEBHOOKS_RETRY_JITTER = 0


@pytest.fixture
def receiver_factory(settings: Any) -> Any:
    """More receivers when a test needs several endpoints."""
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    started: list[WebhookReceiver] = []

    def _make(**options: Any) -> WebhookReceiver:
        receiver = WebhookReceiver(**options).start()
        started.append(receiver)
        return receiver

    yield _make
    for receiver in started:
        receiver.stop()
