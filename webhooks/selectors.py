"""Reads of the webhooks app. Every read is scoped to the account asking: others' rows are not found."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections
from django.db.models import Prefetch, Q, QuerySet

from accounts.models import Account
from core.errors import FieldError, NotFound
from webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Endpoint, Event, FeedHorizon, OwnTransactionId
from webhooks.registry import audience_allows


def endpoint_list(*, account: Account) -> QuerySet[Endpoint]:
    return Endpoint.objects.filter(account=account).order_by("id")


def endpoint_get(*, account: Account, endpoint_id: int) -> Endpoint:
    endpoint = Endpoint.objects.filter(account=account, pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No webhook endpoint with this id.")
    return endpoint


def delivery_list(*, endpoint: Endpoint, status: str | None = None) -> QuerySet[Delivery]:
    if status is not None and status not in DeliveryStatus.values:
        raise FieldError("status", f"Unknown status {status!r}; one of {', '.join(DeliveryStatus.values)}.")
    deliveries = Delivery.objects.filter(endpoint=endpoint).select_related("event")
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries.prefetch_related(Prefetch("attempts", queryset=DeliveryAttempt.objects.order_by("number")))


def delivery_get(*, account: Account, delivery_id: int) -> Delivery:
    delivery = Delivery.objects.select_related("event", "endpoint").filter(endpoint__account=account, pk=delivery_id)
    found = delivery.prefetch_related(Prefetch("attempts", queryset=DeliveryAttempt.objects.order_by("number"))).first()
    if found is None:
        raise NotFound("No webhook delivery with this id.")
    return found


def event_feed(
    *, account: Account, after: str | None, types: Sequence[str] = (), limit: int
) -> tuple[list[Event], bool]:
    """The account's events after the event ``after`` (a ``webhook-id``), oldest first.

    The same events its endpoints receive, minus those its audience checks now
    refuse. Returns (up to ``limit`` events, whether more follow).

    Gapless: events are ordered by (transaction id, id), and on PostgreSQL only
    events of transactions older than every transaction still running are listed
    (the caller's own writes excepted), so nothing can later commit before a
    cursor this feed handed out. SQLite serialises writers: there ``xid`` is 0
    and the order is the id.
    """
    events = Event.objects.filter(recipients__account_id=account.pk).order_by("xid", "id")
    if connections[events.db].vendor == "postgresql":
        events = events.filter(Q(xid__lt=FeedHorizon()) | Q(xid=OwnTransactionId()))
    if types:
        events = events.filter(type__in=list(types))
    position: tuple[int, int] | None = None
    if after:
        position = Event.objects.filter(public_id=after).values_list("xid", "pk").first()
        if position is None:
            raise FieldError("after", "No event with this id; pass the id of the last event you processed.")
    found: list[Event] = []
    while True:
        page = events
        if position is not None:
            xid, pk = position
            # (xid, id) > (x, pk); the redundant xid >= x lets PostgreSQL range-scan the index.
            page = page.filter(Q(xid__gte=xid), Q(xid__gt=xid) | Q(xid=xid, pk__gt=pk))
        chunk = list(page[: limit + 1])
        for event in chunk:
            if audience_allows(event.type, event.data, account.pk):
                found.append(event)
                if len(found) > limit:
                    return found[:limit], True
        if len(chunk) <= limit:
            return found, False
        position = (chunk[-1].xid, chunk[-1].pk)
