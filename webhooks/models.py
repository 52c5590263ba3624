import base64
import secrets
import uuid
from typing import Any

from django.db import models
from django.db.models import Q
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone


def new_event_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_lease_token() -> str:
    return uuid.uuid4().hex


class CurrentTransactionId(models.Func):
    """The id of the transaction running the statement (PostgreSQL); 0 on SQLite.

    On PostgreSQL it is the top-level transaction's id even inside a savepoint, so every
    event one transaction writes carries the same value.
    """

    output_field = models.BigIntegerField()

    def as_postgresql(self, compiler: SQLCompiler, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return "pg_current_xact_id()::text::bigint", []

    def as_sqlite(self, compiler: SQLCompiler, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return "0", []


class FeedHorizon(models.Func):
    """PostgreSQL: the oldest transaction id still running when the statement's snapshot was taken.

    Every transaction with a smaller id has committed or rolled back, so no event with a
    smaller ``xid`` can appear later. The caller's own transaction counts as running.
    """

    output_field = models.BigIntegerField()

    def as_postgresql(self, compiler: SQLCompiler, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return "pg_snapshot_xmin(pg_current_snapshot())::text::bigint", []


class OwnTransactionId(models.Func):
    """PostgreSQL: the caller's transaction id, or NULL while it has written nothing."""

    output_field = models.BigIntegerField()

    def as_postgresql(self, compiler: SQLCompiler, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return "pg_current_xact_id_if_assigned()::text::bigint", []


class Event(models.Model):
    """One thing that happened, written in the same transaction as the change (the outbox).

    ``public_id`` is the ``webhook-id`` every receiver sees, stable across retries and
    identical in the polling feed. ``xid`` is the id of the transaction that wrote the
    event (shared by every event of that transaction): the feed pages on (xid, id).
    """

    public_id = models.CharField(max_length=40, unique=True, default=new_event_id, editable=False)
    type = models.CharField(max_length=64, db_index=True)
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When deliveries were created for every subscribed endpoint."
    )
    xid = models.BigIntegerField(
        db_default=CurrentTransactionId(),
        editable=False,
        db_index=False,
        help_text="The id of the transaction that wrote the event (0 on SQLite and for events older than it).",
    )

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], name="event_undispatched_idx", condition=Q(dispatched_at__isnull=True)),
            models.Index(fields=["xid", "id"], name="event_feed_order_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"


class EventRecipient(models.Model):
    """An account an event is addressed to: what its endpoints receive and its feed lists."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="recipients")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "account"], name="uniq_event_recipient")]
        indexes = [models.Index(fields=["account", "event"], name="recipient_feed_idx")]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.account_id}"


class Endpoint(models.Model):
    """A URL an account wants its events POSTed to, signed with the endpoint's secret."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=500, blank=True)
    event_types = models.JSONField(
        default=list, blank=True, help_text='Event types delivered here; empty or ["*"] means every type.'
    )
    secret = models.CharField(max_length=100, default=new_secret, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failure since the last success; cleared by a success."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["account", "id"], name="endpoint_account_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Delivery(models.Model):
    """One event on its way to one endpoint; the retry schedule lives in ``next_attempt_at``.

    A worker owns a pending delivery while ``lease_expires_at`` is in the future and it
    holds ``lease_token``; a claim whose worker died ends with its lease. ``sending_until``
    marks an attempt on the wire, which deleting the endpoint waits for.
    """

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0, help_text="Attempts made, redeliveries included.")
    round_attempts = models.PositiveIntegerField(
        default=0, help_text="Attempts since the delivery was created or last redelivered; drives the schedule."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    sending_until = models.DateTimeField(
        null=True, blank=True, help_text="Set while an attempt is on the wire: until its deadline at the latest."
    )
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="uniq_delivery_event_endpoint")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="delivery_due_idx", condition=Q(status=DeliveryStatus.PENDING)
            ),
            models.Index(fields=["endpoint", "-id"], name="delivery_endpoint_idx"),
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} ({self.status})"


class DeliveryAttempt(models.Model):
    """One HTTP request made for a delivery, kept as sent and answered."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_body = models.TextField(blank=True, help_text="The first 1 KB of the response.")
    url = models.URLField(max_length=2000)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="uniq_attempt_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery #{self.delivery_id}"
