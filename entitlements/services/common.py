"""What the access-request and grant services share: rule names, event payloads, and deciding items under lock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from core.actors import Actor, actor_fields
from core.errors import Conflict, FieldError
from entitlements.models import AccessRequest, AccessRequestItem, Grant, ItemStatus, RequestStatus
from entitlements.selectors import grant_effective_status
from webhooks.services import event_publish

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


# --- deciding items -------------------------------------------------------------------


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


def _until(expires_at: datetime | None) -> str:
    return f"until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "permanently"


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
