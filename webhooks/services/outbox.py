"""The outbox: events recorded in the writer's own transaction, fanned out after it commits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from accounts.models import Account
from core.enqueue import enqueue_on_commit
from webhooks.models import Event, EventRecipient
from webhooks.services.payloads import json_safe


@transaction.atomic
def event_publish(*, event_type: str, data: dict[str, Any], recipients: Iterable[Account | int]) -> Event | None:
    """Record an event for ``recipients`` in the caller's transaction (the outbox).

    Nothing leaves before the transaction commits; on commit the fan-out task is
    enqueued, and the sweeper catches whatever that enqueue loses.
    Returns None when there is nobody to tell.
    """
    account_ids = sorted({r.pk if isinstance(r, Account) else int(r) for r in recipients})
    if not account_ids:
        return None
    event = Event.objects.create(type=event_type, data=json_safe(data))
    EventRecipient.objects.bulk_create([EventRecipient(event=event, account_id=pk) for pk in account_ids])
    enqueue_on_commit("webhooks.tasks.event_dispatch", event.pk)
    return event
