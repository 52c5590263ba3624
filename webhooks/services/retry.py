"""When a delivery is tried again: the retry schedule with its jitter, a receiver's
Retry-After, the hand-off to the sweeper, and redelivery on request."""

from __future__ import annotations

import email.utils
import logging
import random
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_log
from core.enqueue import enqueue_on_commit
from core.errors import Conflict
from webhooks.models import Delivery, DeliveryStatus, Endpoint

logger = logging.getLogger(__name__)


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def retry_delay(*, round_attempts: int, status_code: int | None, retry_after: str | None, now: datetime) -> float:
    """Seconds to wait after the ``round_attempts``-th failed attempt: the schedule with jitter,
    or the receiver's Retry-After on 429/503 when that is longer (capped)."""
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    base = schedule[min(round_attempts, len(schedule)) - 1].total_seconds()
    jitter = settings.WEBHOOKS_RETRY_JITTER
    delay = base * random.uniform(1 - jitter, 1 + jitter) if jitter else base
    if status_code in (429, 503):
        asked = _retry_after(retry_after, now)
        if asked is not None:
            delay = max(delay, min(asked, settings.WEBHOOKS_RETRY_AFTER_MAX.total_seconds()))
    return delay


def handed_off(now: datetime) -> datetime:
    """When a delivery handed to the fast path (ping, redelivery) becomes the sweeper's: after the grace."""
    return now + settings.WEBHOOKS_SWEEP_GRACE


@transaction.atomic
def delivery_redeliver(*, delivery: Delivery, actor: Actor) -> Delivery:
    """Send a delivery again now, with a fresh retry schedule and the same ``webhook-id``."""
    delivery = Delivery.objects.select_for_update(of=("self",)).select_related("endpoint", "event").get(pk=delivery.pk)
    if not delivery.endpoint.enabled:
        raise Conflict("The endpoint is disabled; enable it before redelivering.", code="endpoint_disabled")
    now = timezone.now()
    was = delivery.status
    delivery.round_attempts = 0
    delivery.next_attempt_at = handed_off(now)
    in_flight = (
        delivery.status == DeliveryStatus.PENDING
        and bool(delivery.lease_token)
        and (delivery.lease_expires_at is not None and delivery.lease_expires_at > now)
    )
    if not in_flight:
        # A delivery in flight just gets a fresh schedule; the others are due now and sent at once.
        delivery.status = DeliveryStatus.PENDING
        delivery.completed_at = None
        delivery.lease_token = ""
        delivery.lease_expires_at = None
        enqueue_on_commit("webhooks.tasks.delivery_send", delivery.pk)
    delivery.save()
    logger.info("Webhook delivery %s redelivered by %s", delivery.pk, actor or "system")
    audit_log(
        obj=delivery,
        action="redelivered",
        actor=actor,
        message=f"{delivery.event.type} {delivery.event.public_id} to {delivery.endpoint.url}: "
        + ("in flight, its retry schedule starts again." if in_flight else f"was {was}, sent again now."),
        at=now,
    )
    return delivery


@transaction.atomic
def deliveries_redeliver_failed(*, endpoint: Endpoint, since: datetime, actor: Actor) -> int:
    """Send again every failed delivery of ``endpoint`` created at or after ``since``; returns how many."""
    if not Endpoint.objects.filter(pk=endpoint.pk, enabled=True).exists():
        raise Conflict("The endpoint is disabled; enable it before redelivering.", code="endpoint_disabled")
    count = Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.FAILED, created_at__gte=since).update(
        status=DeliveryStatus.PENDING,
        round_attempts=0,
        next_attempt_at=timezone.now(),
        completed_at=None,
        lease_token="",
        lease_expires_at=None,
    )
    logger.info("%s failed deliveries of endpoint %s since %s redelivered by %s", count, endpoint.pk, since, actor)
    if count:
        audit_log(
            obj=endpoint,
            action="failed deliveries redelivered",
            actor=actor,
            message=f"{count} failed deliveries created since {since:%Y-%m-%d %H:%M} UTC sent again.",
        )
        enqueue_on_commit("webhooks.tasks.webhooks_sweep")
    return count
