"""The auto-decision policy: what happens to a new access request item before any Ops looks at it.

Rules run in this order; the first that matches decides (docs/entitlements.md):

1. ``account_suspended``: the account is suspended -> refused.
2. ``refusal_cooldown``: Ops refused the same account x dataset x frequency less than
   ``ENTITLEMENTS_REFUSAL_COOLDOWN`` ago -> refused.
3. ``auto_approve``: the dataset frequency's approval mode is auto-approve -> approved
   (a permanent grant).
4. ``manual_review``: everything else -> pending, and Ops are notified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from accounts.models import Account
from catalog.models import ApprovalMode, DatasetFrequency
from entitlements.models import AccessRequestItem, ItemStatus


class Rule:
    ACCOUNT_SUSPENDED = "account_suspended"
    REFUSAL_COOLDOWN = "refusal_cooldown"
    AUTO_APPROVE = "auto_approve"
    MANUAL_REVIEW = "manual_review"


@dataclass(frozen=True)
class Decision:
    status: str
    rule: str
    note: str

    @property
    def automatic(self) -> bool:
        return self.status != ItemStatus.PENDING


def refusal_cooldown() -> timedelta:
    return settings.ENTITLEMENTS_REFUSAL_COOLDOWN


def access_item_decide(*, account: Account, offer: DatasetFrequency, now: datetime) -> Decision:
    """Decide one requested frequency by the rules above, in order."""
    if account.is_suspended:
        return Decision(ItemStatus.REFUSED, Rule.ACCOUNT_SUSPENDED, "Refused automatically: the account is suspended.")

    cooldown = refusal_cooldown()
    if cooldown > timedelta(0):
        # Only Ops refusals count: an automatic refusal must not extend the cooldown forever.
        last_refusal = (
            AccessRequestItem.objects.filter(
                account=account,
                dataset_id=offer.dataset_id,
                frequency=offer.frequency,
                status=ItemStatus.REFUSED,
                decided_automatically=False,
                decided_at__gt=now - cooldown,
            )
            .order_by("-decided_at")
            .values_list("decided_at", flat=True)
            .first()
        )
        if last_refusal is not None:
            until = last_refusal + cooldown
            return Decision(
                ItemStatus.REFUSED,
                Rule.REFUSAL_COOLDOWN,
                f"Refused automatically: Ops refused this frequency at {last_refusal:%Y-%m-%d %H:%M} UTC; "
                f"a new request is possible after {until:%Y-%m-%d %H:%M} UTC.",
            )

    if offer.approval_mode == ApprovalMode.AUTO_APPROVE:
        return Decision(
            ItemStatus.APPROVED, Rule.AUTO_APPROVE, "Approved automatically: this frequency is set to auto-approve."
        )

    return Decision(ItemStatus.PENDING, Rule.MANUAL_REVIEW, "Waiting for Ops: this frequency is approved by hand.")
