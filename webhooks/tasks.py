from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def event_dispatch(event_id: int) -> None:
    """Fan an event out into deliveries for every subscribed endpoint, then deliver them."""
    from webhooks import delivery

    delivery.event_dispatch(event_id=event_id)
