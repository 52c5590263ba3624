from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from accounts.models import Account
from webhooks.models import Event, EventRecipient


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    # Decimals become strings, datetimes ISO 8601: exactly what receivers will parse.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


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
    event = Event.objects.create(type=event_type, data=_json_safe(data))
    EventRecipient.objects.bulk_create([EventRecipient(event=event, account_id=pk) for pk in account_ids])
    _enqueue_dispatch(event.pk)
    return event


def _enqueue_dispatch(event_id: int) -> None:
    from webhooks import tasks

    tasks.event_dispatch.delay_on_commit(event_id)
