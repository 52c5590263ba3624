from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from catalog.models import Frequency


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REFUSED = "refused", "Refused"
    PARTIALLY_APPROVED = "partially_approved", "Partially approved"
    CANCELLED = "cancelled", "Cancelled"


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REFUSED = "refused", "Refused"
    CANCELLED = "cancelled", "Cancelled"


class GrantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class AccessRequest(models.Model):
    """A quant asking for one dataset at one or more frequencies; each item is decided on its own.

    ``status`` is derived from the items by the services and stored for filtering.
    """

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="access_requests")
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.PROTECT, related_name="access_requests")
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=24, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="request_queue_idx"),
            models.Index(fields=["account", "-created_at"], name="request_account_idx"),
        ]

    def __str__(self) -> str:
        return f"request #{self.pk}: {self.account.ref} asks for {self.dataset.symbol} ({self.status})"


class AccessRequestItem(models.Model):
    """One frequency of an access request, with who decided it, when and why."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="items")
    # Denormalised from the request so the database can enforce one pending item per
    # account x dataset x frequency.
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+")
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.PROTECT, related_name="+")
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_automatically = models.BooleanField(default=False)
    decision_rule = models.CharField(
        max_length=32,
        blank=True,
        help_text="Machine code of what decided the item: a policy rule, ops_decision or cancelled_by_requester.",
    )
    decision_note = models.TextField(blank=True, help_text="Why: the Ops note, refusal reason or policy rule.")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "dataset", "frequency"],
                condition=Q(status="pending"),
                name="uniq_pending_item",
            ),
            models.UniqueConstraint(fields=["request", "frequency"], name="uniq_item_per_request"),
        ]
        indexes = [
            models.Index(
                fields=["account", "dataset", "frequency", "-decided_at"],
                condition=Q(status="refused"),
                name="item_refusal_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"request #{self.request_id} {self.frequency} ({self.status})"


class Grant(models.Model):
    """Access for one account to one dataset at one frequency, until ``expires_at`` if set.

    Reads compare ``expires_at`` with the clock, so an expired grant gives no access
    even before the periodic task marks it expired.
    """

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="grants")
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.PROTECT, related_name="grants")
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    status = models.CharField(max_length=16, choices=GrantStatus.choices, default=GrantStatus.ACTIVE)
    item = models.ForeignKey(AccessRequestItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="grants")
    starts_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_by_account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)
    expiring_notified_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "dataset", "frequency"],
                condition=Q(status="active"),
                name="uniq_active_grant",
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(status="active"), name="grant_active_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"grant #{self.pk}: {self.account.ref} {self.dataset.symbol} {self.frequency} ({self.status})"


class GrantChange(models.Model):
    """Audit trail of a grant: created, extended, shortened, revoked, expired."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        EXTENDED = "extended", "Extended"
        SHORTENED = "shortened", "Shortened"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="changes")
    action = models.CharField(max_length=16, choices=Action.choices)
    at = models.DateTimeField(default=timezone.now)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    old_expires_at = models.DateTimeField(null=True, blank=True)
    new_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.action} grant #{self.grant_id} at {self.at:%Y-%m-%d %H:%M}"
