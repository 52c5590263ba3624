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
