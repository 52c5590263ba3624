"""Access requests: a quant asks, the policy or Ops decide each item (approve, trial, refuse), the quant may withdraw."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Role
from accounts.selectors import accounts_with_role
from catalog.models import Dataset, DatasetFrequency
from core.actors import Actor
from core.audit import audit_log
from core.enqueue import enqueue_on_commit
from core.errors import Conflict, FieldError
from entitlements import policy
from entitlements.models import AccessRequest, AccessRequestItem, ItemStatus
from entitlements.selectors import grants_in_force
from entitlements.services.common import (
    RULE_CANCELLED,
    RULE_OPS_DECISION,
    _frequencies_check,
    _item_decide,
    _items_lock_pending,
    _publish_decided,
    _request_status,
    _request_status_refresh,
    _until,
    access_request_payload,
)
from entitlements.services.grants import _grant_insert
from webhooks.services import event_publish


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
def access_request_cancel(*, request: AccessRequest, actor: Actor) -> AccessRequest:
    """The requesting quant (``actor``) withdraws every item still pending; 409 ``nothing_pending`` when none is."""
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
        actor=actor,
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
