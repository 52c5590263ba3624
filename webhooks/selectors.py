"""Reads of the webhooks app. Every read is scoped to the account asking: others' rows are not found."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Prefetch, QuerySet

from accounts.models import Account
from core.errors import FieldError, NotFound
from webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Endpoint, Event
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
    """
    events = Event.objects.filter(recipients__account_id=account.pk).order_by("id")
    if after:
        after_pk = Event.objects.filter(public_id=after).values_list("pk", flat=True).first()
        if after_pk is None:
            raise FieldError("after", "No event with this id; pass the id of the last event you processed.")
        events = events.filter(pk__gt=after_pk)
    if types:
        events = events.filter(type__in=list(types))
    found: list[Event] = []
    cursor = 0
    while True:
        chunk = list(events.filter(pk__gt=cursor)[: limit + 1])
        for event in chunk:
            if audience_allows(event.type, event.data, account.pk):
                found.append(event)
                if len(found) > limit:
                    return found[:limit], True
        if len(chunk) <= limit:
            return found, False
        cursor = chunk[-1].pk
