from celery import shared_task

from entitlements import services


@shared_task(acks_late=True)
def grants_expire() -> int:
    """Mark grants past their end as expired and tell their quants (reads already deny them)."""
    return services.grants_expire_due()


@shared_task(acks_late=True)
def grants_notify_expiring() -> int:
    """Send the one access_grant.expiring notice of each trial ending soon."""
    return services.grants_notify_expiring()


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def access_request_email_ops(request_id: int) -> bool:
    """Email Ops that an access request waits for them (skipped once nothing is pending)."""
    return services.access_request_email_ops(request_id=request_id)
