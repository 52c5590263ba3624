"""The shared webhook test fixtures work end to end: publish, deliver_now, receiver."""

import pytest
from standardwebhooks.webhooks import Webhook

from accounts.models import Role
from tests.factories import AccountFactory
from webhooks import services


@pytest.mark.django_db
def test_deliver_now_delivers_a_published_event_to_the_receiver(webhook_receiver, deliver_now):
    account = AccountFactory(role=Role.BUYER)
    endpoint = services.endpoint_create(account=account, url=webhook_receiver.url)
    event = services.event_publish(event_type="access_request.created", data={"id": 7}, recipients=[account])

    assert deliver_now() == 1
    (request,) = webhook_receiver.wait_for(1)
    body = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert body == {
        "id": event.public_id,
        "type": "access_request.created",
        "timestamp": body["timestamp"],
        "data": {"id": 7},
    }
    assert deliver_now() == 0
