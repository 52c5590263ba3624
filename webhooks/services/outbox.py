"""The outbox: events recorded in the writer's own transaction, fanned out after it commits."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from core.enqueue import enqueue_on_commit
from webhooks.models import Event, EventRecipient, new_event_id
from webhooks.services.payloads import json_safe


@functools.cache
def _event_insert_sql() -> str:
    event, recipient = Event._meta.db_table, EventRecipient._meta.db_table
    return (
        f'WITH e AS (INSERT INTO "{event}" (public_id, type, data, created_at) '  # noqa: S608
        "VALUES (%s, %s, %s, %s) RETURNING id, xid), "
        f'r AS (INSERT INTO "{recipient}" (event_id, account_id) SELECT e.id, unnest(%s::bigint[]) FROM e) '
        "SELECT id, xid FROM e"
    )


@transaction.atomic(savepoint=False)  # part of the caller's write: no savepoint round trips
def event_publish(*, event_type: str, data: dict[str, Any], recipients: Iterable[Account | int]) -> Event | None:
    """Record an event for ``recipients`` in the caller's transaction (the outbox).

    Nothing leaves before the transaction commits; on commit the fan-out task is
    enqueued, and the sweeper catches whatever that enqueue loses.
    Returns None when there is nobody to tell.
    """
    account_ids = sorted({r.pk if isinstance(r, Account) else int(r) for r in recipients})
    if not account_ids:
        return None
    event = Event(public_id=new_event_id(), type=event_type, data=json_safe(data), created_at=timezone.now())
    if connection.vendor == "postgresql":
        # Every write pays for this: the event and its recipients in one fixed statement.
        data_value = Event._meta.get_field("data").get_db_prep_save(event.data, connection)
        with connection.cursor() as cursor:
            cursor.execute(
                _event_insert_sql(), [event.public_id, event.type, data_value, event.created_at, account_ids]
            )
            event.pk, event.xid = cursor.fetchone()
        event._state.adding, event._state.db = False, connection.alias
    else:
        event.save()
        EventRecipient.objects.bulk_create([EventRecipient(event=event, account_id=pk) for pk in account_ids])
    enqueue_on_commit("webhooks.tasks.event_dispatch", event.pk)
    return event
