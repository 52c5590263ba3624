from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone


class IdempotencyRecord(models.Model):
    """The first response to a POST sent with an ``Idempotency-Key``, replayed for repeats.

    ``scope`` hashes the caller's credential, the method, the path and the key, so a
    key only ever replays to the caller who sent it. A row without ``status_code``
    is a request still in progress.
    """

    scope = models.CharField(max_length=64, unique=True)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request body.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    headers = models.JSONField(default=dict)
    body = models.BinaryField(default=b"")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.scope[:12]} ({self.status_code or 'in progress'})"


class AuditEntry(models.Model):
    """Who changed what, when and why: the one audit log of every app's writes, people's and the system's.

    Written by the services in the change's transaction (``core.audit.audit_log``); never edited.
    ``actor`` is a label that outlives the user or account it names.
    """

    at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=200, help_text="admin:<username>, <role>:<account ref> or system.")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=200)
    object_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    message = models.TextField(blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["content_type", "object_id", "at"], name="core_audit_object_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_repr}"
