"""Celery tasks: thin shells over webhooks.services. Each takes ids, never model instances.

Webhook tasks are acknowledged when they start, not when they end: what they work
on is in the database (undispatched events, due deliveries, leases), so a message
lost with a dying worker or a broker outage costs latency only; the sweeper takes
the work over. Nothing is left unacknowledged on a connection that drops.
"""

from typing import Any

from celery import shared_task

from webhooks import services
from webhooks.sender import in_caller, sender

_options: dict[str, Any] = {"bind": True, "acks_late": False, "reject_on_worker_lost": False}


@shared_task(**_options)
def event_dispatch(self: Any, event_id: int) -> None:
    """Fast path, enqueued on commit: fan the event out and send every delivery at once, concurrently."""
    sender.send_started(services.event_fanout_start(event_id=event_id), wait=in_caller(self.request))


@shared_task(**_options)
def delivery_send(self: Any, delivery_id: int) -> None:
    """Claim a delivery that is due and free, and attempt it now."""
    lease_token = services.delivery_claim(delivery_id=delivery_id)
    if lease_token is not None:
        sender.send([(delivery_id, lease_token)], wait=in_caller(self.request))


@shared_task(**_options)
def delivery_attempt(self: Any, delivery_id: int, lease_token: str) -> None:
    """Attempt a delivery claimed under ``lease_token`` (ping, redelivery); a stale claim does nothing."""
    sender.send([(delivery_id, lease_token)], wait=in_caller(self.request))


@shared_task(**_options)
def deliveries_send(self: Any, claims: list[list[Any]]) -> None:
    """Send a chunk of a large fan-out's deliveries, claimed at the fan-out; stale claims do nothing."""
    sender.send([(int(delivery_id), str(token)) for delivery_id, token in claims], wait=in_caller(self.request))


@shared_task(**_options)
def webhooks_sweep(self: Any) -> dict[str, int]:
    """Safety net, every few seconds: dispatch lost events and send every due delivery."""
    claims: list[services.Claim] = []
    result = services.webhooks_sweep(deliver=lambda delivery_id, token: claims.append((delivery_id, token)))
    sender.send(claims, wait=in_caller(self.request))
    return {"dispatched": result.dispatched, "claimed": result.claimed}
