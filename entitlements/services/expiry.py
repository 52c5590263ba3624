"""Trials that end: grants past their end marked expired, and the notice sent before the end."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import audit_log
from entitlements.models import Grant, GrantChange, GrantStatus
from entitlements.services.common import grant_payload
from webhooks.services import event_publish


def _grant_mark_expired(grant: Grant, *, now: datetime) -> None:
    grant.status = GrantStatus.EXPIRED
    grant.save(update_fields=["status", "updated_at"])
    audit_log(
        obj=grant,
        action="expired",
        actor=None,
        message=f"Trial ended at {grant.expires_at:%Y-%m-%d %H:%M} UTC.",
        at=now,
    )
    GrantChange.objects.create(
        grant=grant,
        action=GrantChange.Action.EXPIRED,
        at=now,
        reason=f"Trial ended at {grant.expires_at:%Y-%m-%d %H:%M:%S} UTC.",
        old_expires_at=grant.expires_at,
        new_expires_at=grant.expires_at,
    )
    event_publish(event_type="access_grant.expired", data=grant_payload(grant), recipients=[grant.account_id])


def grants_expire_due(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Mark expired every active grant whose end has passed and tell its quant; safe on many workers at once."""
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            batch = list(
                Grant.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("account", "dataset", "item")
                .filter(status=GrantStatus.ACTIVE, expires_at__lte=now)
                .order_by("expires_at", "id")[:batch_size]
            )
            for grant in batch:
                _grant_mark_expired(grant, now=now)
        total += len(batch)
        if len(batch) < batch_size:
            return total


def grants_notify_expiring(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Tell each quant once, GRANT_EXPIRING_NOTICE ahead, that a grant is about to end."""
    now = now or timezone.now()
    horizon = now + settings.GRANT_EXPIRING_NOTICE
    total = 0
    while True:
        with transaction.atomic():
            batch = list(
                Grant.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("account", "dataset", "item")
                .filter(
                    status=GrantStatus.ACTIVE,
                    expires_at__gt=now,
                    expires_at__lte=horizon,
                    expiring_notified_at__isnull=True,
                )
                .order_by("expires_at", "id")[:batch_size]
            )
            for grant in batch:
                assert grant.expires_at is not None
                grant.expiring_notified_at = now
                grant.save(update_fields=["expiring_notified_at", "updated_at"])
                event_publish(
                    event_type="access_grant.expiring",
                    data=grant_payload(grant, expires_in_seconds=int((grant.expires_at - now).total_seconds())),
                    recipients=[grant.account_id],
                )
        total += len(batch)
        if len(batch) < batch_size:
            return total
