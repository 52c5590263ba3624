"""Grants: given directly or by approving a request, extended or shortened, revoked."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, Role
from catalog.models import Dataset
from core.actors import Actor, actor_fields
from core.audit import audit_log
from core.errors import Conflict, FieldError
from entitlements.models import AccessRequest, AccessRequestItem, Grant, GrantChange, GrantStatus, ItemStatus
from entitlements.selectors import grant_effective_status, grants_in_force
from entitlements.services.common import (
    MAX_TRIAL_DAYS,
    RULE_OPS_DECISION,
    _item_decide,
    _items_lock_pending,
    _publish_decided,
    _request_status_refresh,
    _until,
    grant_payload,
)
from entitlements.services.expiry import _grant_mark_expired
from webhooks.services import event_publish


def grant_expiry_resolve(
    *, expires_at: datetime | None = None, trial_days: int | None = None, now: datetime | None = None
) -> datetime | None:
    """The end of a grant from an explicit ``expires_at`` or a trial length in days (not both); None = permanent."""
    now = now or timezone.now()
    if expires_at is not None and trial_days is not None:
        raise FieldError("trial_days", "Give expires_at or trial_days, not both.")
    if trial_days is not None:
        if not 1 <= trial_days <= MAX_TRIAL_DAYS:
            raise FieldError("trial_days", f"Must be between 1 and {MAX_TRIAL_DAYS} days.")
        return now + timedelta(days=trial_days)
    if expires_at is not None and expires_at <= now:
        raise FieldError("expires_at", "Must be in the future.")
    return expires_at


def _end_text(expires_at: datetime | None) -> str:
    return f"{expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "no end (permanent)"


def _grants_expire_stale(*, account: Account, dataset: Dataset, frequency: str, now: datetime) -> None:
    """Mark expired an active grant past its end that the sweeper has not reached yet."""
    stale = Grant.objects.select_for_update(of=("self",)).filter(
        account=account, dataset=dataset, frequency=frequency, status=GrantStatus.ACTIVE, expires_at__lte=now
    )
    for grant in stale.select_related("account", "dataset", "item"):
        _grant_mark_expired(grant, now=now)


def _already_granted(grant: Grant) -> Conflict:
    return Conflict(
        f"{grant.account.ref} already has access to {grant.dataset.symbol} at {grant.frequency} (grant #{grant.pk}).",
        code="already_granted",
        grant_id=grant.pk,
        frequency=grant.frequency,
    )


def _grant_insert(
    *,
    account: Account,
    dataset: Dataset,
    frequency: str,
    item: AccessRequestItem | None,
    actor: Actor,
    expires_at: datetime | None,
    note: str,
    now: datetime,
) -> Grant:
    _grants_expire_stale(account=account, dataset=dataset, frequency=frequency, now=now)
    existing = grants_in_force(at=now).filter(account=account, dataset=dataset, frequency=frequency).first()
    if existing is not None:
        raise _already_granted(existing)
    try:
        with transaction.atomic():
            grant = Grant.objects.create(
                account=account,
                dataset=dataset,
                frequency=frequency,
                item=item,
                starts_at=now,
                expires_at=expires_at,
                created_at=now,
                note=note,
                **actor_fields(actor, "created_by"),
            )
    except IntegrityError:
        # Another transaction granted the same access between our check and our insert.
        existing = Grant.objects.filter(
            account=account, dataset=dataset, frequency=frequency, status=GrantStatus.ACTIVE
        ).first()
        if existing is None:
            raise
        raise _already_granted(existing) from None
    GrantChange.objects.create(
        grant=grant,
        action=GrantChange.Action.CREATED,
        at=now,
        reason=note,
        new_expires_at=expires_at,
        **actor_fields(actor, "actor"),
    )
    source = f"approving request #{item.request_id}" if item is not None else "directly"
    audit_log(
        obj=grant,
        action="granted",
        actor=actor,
        message=f"Granted {account.ref} {dataset.symbol} {frequency} {_until(expires_at)}, {source}.",
        reason=note,
        at=now,
    )
    event_publish(event_type="access_grant.created", data=grant_payload(grant), recipients=[account])
    return grant


@transaction.atomic
def grant_create(
    *,
    account: Account,
    dataset: Dataset,
    frequency: str,
    actor: Actor,
    expires_at: datetime | None = None,
    note: str = "",
) -> Grant:
    """Ops give a quant access directly (a trial when ``expires_at`` is set).

    A pending request item for the same access is approved by this grant, so the
    queue does not keep a request that is already satisfied.
    """
    now = timezone.now()
    if account.role != Role.QUANT:
        raise FieldError("account", f"Grants are for quant accounts; {account.ref} is a {account.role}.")
    offered = [offer.frequency for offer in dataset.frequencies.all()]
    if frequency not in offered:
        raise FieldError("frequency", f"{dataset.symbol} has no {frequency}; it has {', '.join(offered)}.")
    if expires_at is not None and expires_at <= now:
        raise FieldError("expires_at", "Must be in the future.")

    pending = AccessRequestItem.objects.filter(
        account=account, dataset=dataset, frequency=frequency, status=ItemStatus.PENDING
    ).first()
    request: AccessRequest | None = None
    item: AccessRequestItem | None = None
    if pending is not None:
        try:
            request, (item,) = _items_lock_pending(request=pending.request, frequencies=[frequency])
        except Conflict:
            request = item = None  # decided meanwhile: grant on its own
    grant = _grant_insert(
        account=account,
        dataset=dataset,
        frequency=frequency,
        item=item,
        actor=actor,
        expires_at=expires_at,
        note=note,
        now=now,
    )
    if request is not None and item is not None:
        _item_decide(
            item,
            status=ItemStatus.APPROVED,
            actor=actor,
            note=note or f"Granted directly (grant #{grant.pk}).",
            rule=RULE_OPS_DECISION,
            now=now,
        )
        _request_status_refresh(request)
        audit_log(
            obj=request,
            action="approved",
            actor=actor,
            message=f"Approved {dataset.symbol} {frequency} by granting it directly (grant #{grant.pk}).",
            reason=note,
            at=now,
        )
        _publish_decided(request, [item])
    return grant


def _grant_lock_in_force(grant: Grant, *, now: datetime) -> Grant:
    locked = Grant.objects.select_for_update(of=("self",)).select_related("account", "dataset", "item").get(pk=grant.pk)
    status = grant_effective_status(locked, at=now)
    if status != GrantStatus.ACTIVE:
        raise Conflict(
            f"Grant #{locked.pk} is {status}.", code="grant_not_active", grant_id=locked.pk, grant_status=status
        )
    return locked


@transaction.atomic
def grant_update_expiry(*, grant: Grant, expires_at: datetime | None, actor: Actor, reason: str = "") -> Grant:
    """Extend or shorten a grant in force (``None`` makes it permanent); the end must stay in the future.

    The quant gets ``access_grant.updated``; the expiring notice is re-armed for the new end.
    """
    now = timezone.now()
    grant = _grant_lock_in_force(grant, now=now)
    if expires_at is not None and expires_at <= now:
        raise FieldError("expires_at", "Must be in the future; revoke the grant to end access now.")
    old = grant.expires_at
    if old == expires_at:
        return grant
    extended = expires_at is None or (old is not None and expires_at > old)
    grant.expires_at = expires_at
    grant.expiring_notified_at = None
    grant.save(update_fields=["expires_at", "expiring_notified_at", "updated_at"])
    GrantChange.objects.create(
        grant=grant,
        action=GrantChange.Action.EXTENDED if extended else GrantChange.Action.SHORTENED,
        at=now,
        reason=reason,
        old_expires_at=old,
        new_expires_at=expires_at,
        **actor_fields(actor, "actor"),
    )
    audit_log(
        obj=grant,
        action="extended" if extended else "shortened",
        actor=actor,
        message=f"End moved from {_end_text(old)} to {_end_text(expires_at)}.",
        reason=reason,
        at=now,
    )
    event_publish(
        event_type="access_grant.updated",
        data=grant_payload(grant, previous_expires_at=old, reason=reason),
        recipients=[grant.account_id],
    )
    return grant


@transaction.atomic
def grant_revoke(*, grant: Grant, actor: Actor, reason: str) -> Grant:
    """End a grant in force now; the reason is required and the quant is told."""
    reason = (reason or "").strip()
    if not reason:
        raise FieldError("reason", "Say why the access is revoked: the quant sees this reason.")
    now = timezone.now()
    grant = _grant_lock_in_force(grant, now=now)
    grant.status = GrantStatus.REVOKED
    grant.revoked_at = now
    grant.revoke_reason = reason
    for field, value in actor_fields(actor, "revoked_by").items():
        setattr(grant, field, value)
    grant.save(
        update_fields=["status", "revoked_at", "revoke_reason", "revoked_by_user", "revoked_by_account", "updated_at"]
    )
    GrantChange.objects.create(
        grant=grant,
        action=GrantChange.Action.REVOKED,
        at=now,
        reason=reason,
        old_expires_at=grant.expires_at,
        **actor_fields(actor, "actor"),
    )
    audit_log(obj=grant, action="revoked", actor=actor, message="Access ended now.", reason=reason, at=now)
    event_publish(
        event_type="access_grant.revoked",
        data=grant_payload(grant, revoked_at=now, reason=reason),
        recipients=[grant.account_id],
    )
    return grant
