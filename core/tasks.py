from celery import shared_task


@shared_task
def idempotency_records_purge() -> int:
    from core.idempotency import idempotency_records_purge as purge

    return purge()
