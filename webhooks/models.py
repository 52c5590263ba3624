import secrets
import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


def new_event_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def new_secret() -> str:
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Event(models.Model):
    """One thing that happened, written in the same transaction as the change (the outbox).

    ``public_id`` is the ``webhook-id`` every receiver sees, stable across retries and
    identical in the polling feed.
    """

    public_id = models.CharField(max_length=40, unique=True, default=new_event_id, editable=False)
    type = models.CharField(max_length=64, db_index=True)
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When deliveries were created for every subscribed endpoint."
    )

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], name="event_undispatched_idx", condition=Q(dispatched_at__isnull=True)),
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
