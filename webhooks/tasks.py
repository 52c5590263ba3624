"""Celery tasks: thin shells over webhooks.services. Each takes ids, never model instances."""

from celery import shared_task

from webhooks import services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def event_dispatch(event_id: int) -> None:
    """Fast path, enqueued on commit: fan the event out and attempt its deliveries right away.

    The first delivery is attempted in this task; the others go to the queue so
    that several workers send them in parallel and one slow receiver delays no one.
    """
    delivery_ids = services.event_fanout(event_id=event_id)
    for delivery_id in delivery_ids[1:]:
        services.task_enqueue(delivery_send, delivery_id)
    if delivery_ids:
        _send(delivery_ids[0])


def _send(delivery_id: int) -> None:
    lease_token = services.delivery_claim(delivery_id=delivery_id)
    if lease_token is not None:
        services.delivery_attempt(delivery_id=delivery_id, lease_token=lease_token)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def delivery_send(delivery_id: int) -> None:
    """Claim a delivery that is due and free, and attempt it now (redelivery, ping, fan-out)."""
    _send(delivery_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def delivery_attempt(delivery_id: int, lease_token: str) -> None:
    """Attempt a delivery claimed under ``lease_token``; a stale claim does nothing."""
    services.delivery_attempt(delivery_id=delivery_id, lease_token=lease_token)


def _enqueue_attempt(delivery_id: int, lease_token: str) -> None:
    services.task_enqueue(delivery_attempt, delivery_id, lease_token)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def webhooks_sweep() -> dict[str, int]:
    """Safety net, every few seconds: dispatch lost events and enqueue every due delivery."""
    result = services.webhooks_sweep(deliver=_enqueue_attempt)
    return {"dispatched": result.dispatched, "claimed": result.claimed}
