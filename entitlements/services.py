"""Writes of the entitlements context: access requests, their decisions, grants and their ends.

Every service is atomic, takes the actor (an Ops account, an admin user, or None for
the system), writes its audit rows and outbox events in the same transaction, and
locks the rows it decides on so two Ops deciding at once cannot both win.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Role
from accounts.selectors import accounts_with_role
from catalog.models import Dataset, DatasetFrequency
from core.actors import Actor, actor_fields
from core.audit import audit_log
from core.enqueue import enqueue_on_commit
from core.errors import Conflict, FieldError
from entitlements import policy
from entitlements.models import (
    AccessRequest,
    AccessRequestItem,
    Grant,
    GrantChange,
    GrantStatus,
    ItemStatus,
    RequestStatus,
)
from entitlements.selectors import grant_effective_status, grants_in_force
from webhooks.services import event_publish

logger = logging.getLogger(__name__)

RULE_OPS_DECISION = "ops_decision"
RULE_CANCELLED = "cancelled_by_requester"
MAX_TRIAL_DAYS = 3650

# --- payloads -------------------------------------------------------------------------


def _item_payload(item: AccessRequestItem, grant_ids: dict[int, int]) -> dict[str, Any]:
    return {
        "id": item.pk,
        "frequency": item.frequency,
        "status": item.status,
        "decided_at": item.decided_at,
        "decided_automatically": item.decided_automatically,
        "rule": item.decision_rule,
        "note": item.decision_note,
        "grant_id": grant_ids.get(item.pk),
    }


def access_request_payload(request: AccessRequest) -> dict[str, Any]:
    """The event ``data`` of an access request: the same fields the quant's API shows."""
    items = list(request.items.all())
    grant_ids = dict(Grant.objects.filter(item__in=items).order_by("created_at", "id").values_list("item_id", "id"))
    return {
        "id": request.pk,
        "account": request.account.ref,
        "dataset": request.dataset.symbol,
        "reason": request.reason,
        "status": request.status,
        "created_at": request.created_at,
        "items": [_item_payload(item, grant_ids) for item in items],
    }


def grant_payload(grant: Grant, **extra: Any) -> dict[str, Any]:
    return {
        "id": grant.pk,
        "account": grant.account.ref,
        "dataset": grant.dataset.symbol,
        "frequency": grant.frequency,
        "status": grant_effective_status(grant),
        "starts_at": grant.starts_at,
        "expires_at": grant.expires_at,
        "request_id": grant.item.request_id if grant.item_id and grant.item else None,
        **extra,
    }


# --- helpers --------------------------------------------------------------------------


def _request_status(items: Sequence[AccessRequestItem]) -> str:
    """A request is pending while any item is; then approved, refused, partially approved or cancelled."""
    statuses = [item.status for item in items]
    if ItemStatus.PENDING in statuses:
        return RequestStatus.PENDING
    approved = statuses.count(ItemStatus.APPROVED)
    refused = statuses.count(ItemStatus.REFUSED)
    if approved and approved == len(statuses):
        return RequestStatus.APPROVED
    if approved:
        return RequestStatus.PARTIALLY_APPROVED
    if refused:
        return RequestStatus.REFUSED
    return RequestStatus.CANCELLED


def _request_status_refresh(request: AccessRequest) -> None:
    status = _request_status(list(request.items.all()))
    if status != request.status:
        request.status = status
        request.save(update_fields=["status", "updated_at"])


def _frequencies_check(frequencies: Sequence[str], *, offered: Sequence[str], what: str) -> None:
    if not frequencies:
        raise FieldError("frequencies", "Name at least one frequency.")
    repeated = sorted({f for f in frequencies if list(frequencies).count(f) > 1})
    if repeated:
        raise FieldError("frequencies", f"Listed more than once: {', '.join(repeated)}.")
    unknown = [f for f in frequencies if f not in offered]
    if unknown:
        raise FieldError(
            "frequencies", f"{what} has no {', '.join(unknown)}; it has {', '.join(offered) or 'no frequency'}."
        )


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


def _until(expires_at: datetime | None) -> str:
    return f"until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "permanently"


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


def _item_decide(item: AccessRequestItem, *, status: str, actor: Actor, note: str, rule: str, now: datetime) -> None:
    item.status = status
    item.decided_at = now
    item.decided_automatically = False
    item.decision_rule = rule
    item.decision_note = note
    for field, value in actor_fields(actor, "decided_by").items():
        setattr(item, field, value)
    item.save(
        update_fields=[
            "status",
            "decided_at",
            "decided_automatically",
            "decision_rule",
            "decision_note",
            "decided_by_user",
            "decided_by_account",
        ]
    )


def _items_lock_pending(
    *, request: AccessRequest, frequencies: Sequence[str] | None
) -> tuple[AccessRequest, list[AccessRequestItem]]:
    """Lock the request and its items, then the pending items to decide; 409 ``already_decided`` otherwise.

    Locking the request row first serialises every decision on one request, so the
    second of two simultaneous decisions sees the first one's result.
    """
    locked = (
        AccessRequest.objects.select_for_update(of=("self",)).select_related("account", "dataset").get(pk=request.pk)
    )
    items = list(AccessRequestItem.objects.select_for_update().filter(request=locked).order_by("id"))
    by_frequency = {item.frequency: item for item in items}
    if frequencies is None:
        chosen = [item for item in items if item.status == ItemStatus.PENDING]
        if not chosen:
            raise Conflict(
                f"Access request #{locked.pk} has nothing left to decide: it is {locked.status}.",
                code="already_decided",
                request_id=locked.pk,
                request_status=locked.status,
            )
        return locked, chosen
    _frequencies_check(frequencies, offered=list(by_frequency), what=f"Access request #{locked.pk}")
    chosen = [by_frequency[f] for f in frequencies]
    decided = [item for item in chosen if item.status != ItemStatus.PENDING]
    if decided:
        summary = ", ".join(f"{item.frequency} is {item.status}" for item in decided)
        raise Conflict(
            f"Access request #{locked.pk} was already decided: {summary}.",
            code="already_decided",
            request_id=locked.pk,
            items=[{"id": item.pk, "frequency": item.frequency, "status": item.status} for item in decided],
        )
    return locked, chosen


def _publish_decided(request: AccessRequest, decided: Sequence[AccessRequestItem]) -> None:
    data = access_request_payload(request)
    data["decided_item_ids"] = [item.pk for item in decided]
    event_publish(event_type="access_request.decided", data=data, recipients=[request.account_id])


# --- access requests ------------------------------------------------------------------


@transaction.atomic
def access_request_create(
    *, account: Account, dataset: Dataset, frequencies: Sequence[str], reason: str = ""
) -> AccessRequest:
    """A quant asks for ``dataset`` at ``frequencies``; the auto-decision policy then decides each item it can.

    Refused with 409 when a frequency is already granted (in force) or already pending.
    """
    now = timezone.now()
    offers: dict[str, DatasetFrequency] = {offer.frequency: offer for offer in dataset.frequencies.all()}
    _frequencies_check(frequencies, offered=list(offers), what=dataset.symbol)

    conflicts: list[dict[str, Any]] = [
        {"frequency": grant.frequency, "grant_id": grant.pk}
        for grant in grants_in_force(at=now)
        .filter(account=account, dataset=dataset, frequency__in=frequencies)
        .order_by("id")
    ]
    conflicts += [
        {"frequency": item.frequency, "request_id": item.request_id}
        for item in AccessRequestItem.objects.filter(
            account=account, dataset=dataset, frequency__in=frequencies, status=ItemStatus.PENDING
        ).order_by("id")
    ]
    if conflicts:
        raise _request_conflict(dataset, conflicts)

    request = AccessRequest.objects.create(account=account, dataset=dataset, reason=reason, created_at=now)
    items = []
    for frequency in frequencies:
        decision = policy.access_item_decide(account=account, offer=offers[frequency], now=now)
        items.append(
            AccessRequestItem(
                request=request,
                account=account,
                dataset=dataset,
                frequency=frequency,
                status=decision.status,
                decided_at=now if decision.automatic else None,
                decided_automatically=decision.automatic,
                decision_rule=decision.rule,
                decision_note=decision.note,
            )
        )
    try:
        with transaction.atomic():
            AccessRequestItem.objects.bulk_create(items)
    except IntegrityError:
        # A concurrent request for the same frequency won the race for the pending slot.
        pending = AccessRequestItem.objects.filter(
            account=account, dataset=dataset, frequency__in=frequencies, status=ItemStatus.PENDING
        ).order_by("id")
        raise _request_conflict(
            dataset, [{"frequency": item.frequency, "request_id": item.request_id} for item in pending]
        ) from None

    for item in items:
        if item.status == ItemStatus.APPROVED:
            _grant_insert(
                account=account,
                dataset=dataset,
                frequency=item.frequency,
                item=item,
                actor=None,
                expires_at=None,
                note=item.decision_note,
                now=now,
            )
    request.status = _request_status(items)
    request.save(update_fields=["status", "updated_at"])

    audit_log(
        obj=request,
        action="requested",
        actor=account,
        message=f"Asked for {dataset.symbol} {', '.join(frequencies)}.",
        reason=reason,
        at=now,
    )
    decided = [item for item in items if item.decided_automatically]
    if decided:
        audit_log(
            obj=request,
            action="decided automatically",
            actor=None,
            message="; ".join(f"{item.frequency} {item.status} ({item.decision_rule})" for item in decided) + ".",
            reason="; ".join(item.decision_note for item in decided if item.decision_note),
            at=now,
        )
        _publish_decided(request, decided)
    if any(item.status == ItemStatus.PENDING for item in items):
        event_publish(
            event_type="access_request.created",
            data=access_request_payload(request),
            recipients=accounts_with_role(role=Role.OPS),
        )
        if settings.OPS_NOTIFICATION_EMAILS:
            # With the broker down the request still succeeds: the email is lost, the
            # access_request.created event and the admin queue are not.
            enqueue_on_commit("entitlements.tasks.access_request_email_ops", request.pk)
    return request


def _request_conflict(dataset: Dataset, conflicts: list[dict[str, Any]]) -> Conflict:
    granted = [c for c in conflicts if "grant_id" in c]
    if granted:
        what = ", ".join(f"{c['frequency']} (grant #{c['grant_id']})" for c in granted)
        return Conflict(
            f"You already have access to {dataset.symbol} at {what}.",
            code="already_granted",
            grant_id=granted[0]["grant_id"],
            conflicts=conflicts,
        )
    what = ", ".join(f"{c['frequency']} (request #{c['request_id']})" for c in conflicts)
    return Conflict(
        f"You already asked for {dataset.symbol} at {what}; it is waiting for Ops.",
        code="already_pending",
        request_id=conflicts[0]["request_id"] if conflicts else None,
        conflicts=conflicts,
    )


@transaction.atomic
def access_request_approve(
    *,
    request: AccessRequest,
    frequencies: Sequence[str] | None = None,
    actor: Actor,
    expires_at: datetime | None = None,
    note: str = "",
) -> AccessRequest:
    """Ops approve the pending items at ``frequencies`` (all pending ones when None), each becoming a grant.

    ``expires_at`` makes the grants a trial. Deciding an item that is no longer pending is 409 ``already_decided``.
    """
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise FieldError("expires_at", "Must be in the future.")
    request, items = _items_lock_pending(request=request, frequencies=frequencies)
    for item in items:
        _grant_insert(
            account=request.account,
            dataset=request.dataset,
            frequency=item.frequency,
            item=item,
            actor=actor,
            expires_at=expires_at,
            note=note,
            now=now,
        )
        _item_decide(item, status=ItemStatus.APPROVED, actor=actor, note=note, rule=RULE_OPS_DECISION, now=now)
    _request_status_refresh(request)
    trial = f" as a trial {_until(expires_at)}" if expires_at else ""
    audit_log(
        obj=request,
        action="approved",
        actor=actor,
        message=f"Approved {request.dataset.symbol} {', '.join(item.frequency for item in items)}{trial}.",
        reason=note,
        at=now,
    )
    _publish_decided(request, items)
    return request


@transaction.atomic
def access_request_refuse(
    *, request: AccessRequest, frequencies: Sequence[str] | None = None, actor: Actor, reason: str
) -> AccessRequest:
    """Ops refuse the pending items at ``frequencies`` (all pending ones when None); the reason is required."""
    reason = (reason or "").strip()
    if not reason:
        raise FieldError("reason", "Say why the request is refused: the quant sees this reason.")
    now = timezone.now()
    request, items = _items_lock_pending(request=request, frequencies=frequencies)
    for item in items:
        _item_decide(item, status=ItemStatus.REFUSED, actor=actor, note=reason, rule=RULE_OPS_DECISION, now=now)
    _request_status_refresh(request)
    audit_log(
        obj=request,
        action="refused",
        actor=actor,
        message=f"Refused {request.dataset.symbol} {', '.join(item.frequency for item in items)}.",
        reason=reason,
        at=now,
    )
    _publish_decided(request, items)
    return request


@transaction.atomic
def access_request_cancel(*, request: AccessRequest) -> AccessRequest:
    """The requesting quant withdraws every item still pending; 409 ``nothing_pending`` when none is."""
    now = timezone.now()
    try:
        request, items = _items_lock_pending(request=request, frequencies=None)
    except Conflict:
        raise Conflict(
            f"Access request #{request.pk} has nothing pending to cancel.",
            code="nothing_pending",
            request_id=request.pk,
        ) from None
    for item in items:
        _item_decide(
            item,
            status=ItemStatus.CANCELLED,
            actor=None,
            note="Cancelled by the requester.",
            rule=RULE_CANCELLED,
            now=now,
        )
    _request_status_refresh(request)
    audit_log(
        obj=request,
        action="cancelled",
        actor=request.account,
        message=f"Withdrew {', '.join(item.frequency for item in items)}.",
        at=now,
    )
    return request


def access_request_email_ops(*, request_id: int) -> bool:
    """Email OPS_NOTIFICATION_EMAILS that a request waits for them; False when nothing is pending any more."""
    request = AccessRequest.objects.select_related("account", "dataset").filter(pk=request_id).first()
    recipients = list(settings.OPS_NOTIFICATION_EMAILS)
    if request is None or not recipients:
        return False
    pending = [item.frequency for item in request.items.all() if item.status == ItemStatus.PENDING]
    if not pending:
        return False
    admin_path = reverse("admin:entitlements_accessrequest_change", args=[request.pk])
    subject = (
        f"Access request #{request.pk}: {request.account.ref} asks for {request.dataset.symbol} {', '.join(pending)}"
    )
    body = (
        f"{request.account.name} ({request.account.ref}) asks for {request.dataset.name} ({request.dataset.symbol}) "
        f"at {', '.join(pending)}.\n\n"
        f"Reason: {request.reason or '(none given)'}\n\n"
        f"Decide it in the admin at {admin_path} or with "
        f"POST /api/v1/ops/access-requests/{request.pk}/approve or /refuse.\n"
    )
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    return True


# --- grants ---------------------------------------------------------------------------


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
    """Tell each quant once, GRANT_EXPIRING_NOTICE hours ahead, that a grant is about to end."""
    now = now or timezone.now()
    horizon = now + timedelta(hours=settings.GRANT_EXPIRING_NOTICE)
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
