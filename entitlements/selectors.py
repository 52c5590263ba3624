from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Account
from catalog.models import Dataset
from core.errors import ProblemError
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


class NotEntitled(ProblemError):
    status_code = 403
    default_code = "not_entitled"
    default_detail = "You have no active access to this dataset at this frequency."


def grant_require(*, account: Account, dataset: Dataset, frequency: str | None = None) -> Grant:
    """The grant in force for ``account`` on ``dataset`` (at ``frequency``), else 403 ``not_entitled``.

    The error names what is missing and the request to send to ask for it.
    """
    grant = grant_in_force(account_id=account.pk, dataset_id=dataset.pk, frequency=frequency)
    if grant is not None:
        return grant
    frequencies = [frequency] if frequency else [f.frequency for f in dataset.frequencies.all()]
    what = f"{dataset.symbol} at {frequency}" if frequency else f"any frequency of {dataset.symbol}"
    raise NotEntitled(
        f"You have no active access to {what}. Request it with POST /api/v1/access-requests.",
        dataset=dataset.symbol,
        frequency=frequency,
        how_to_request={
            "method": "POST",
            "url": "/api/v1/access-requests",
            "body": {"dataset": dataset.symbol, "frequencies": frequencies, "reason": "..."},
        },
    )
