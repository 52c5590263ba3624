from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from entitlements.models import Grant, GrantStatus


def grants_in_force(*, at: datetime | None = None) -> QuerySet[Grant]:
    """Grants that give access right now: active and not past ``expires_at``, whatever the workers did."""
    now = at or timezone.now()
    return Grant.objects.filter(status=GrantStatus.ACTIVE, starts_at__lte=now).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def grant_in_force(*, account_id: int, dataset_id: int, frequency: str | None = None) -> Grant | None:
    """The grant that lets ``account`` read ``dataset`` (at ``frequency``, or at any frequency)."""
    qs = grants_in_force().filter(account_id=account_id, dataset_id=dataset_id)
    if frequency is not None:
        qs = qs.filter(frequency=frequency)
    return qs.first()
