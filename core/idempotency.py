"""``Idempotency-Key`` for the POSTs that create things.

A repeated key with the same body gets the first response again (with
``Idempotent-Replayed: true``); the same key with another body gets 422; a repeat
that arrives while the first is still running gets 409. Only callers with an API key on a
route that exists get a record: anything else runs as if the header were absent. Server errors, 401, 403
and 429 are not kept, so the client may retry them. A claim whose request never
answered (its process died) is released after ``IDEMPOTENCY_ABANDONED_AFTER``.
Records are purged after ``IDEMPOTENCY_KEY_TTL``.

A response marked ``Cache-Control: no-store`` (one that shows a secret once: a new API
key, a webhook signing secret) is never written to the table: its record keeps only
that the request was done, and a repeat gets 409 ``idempotency_replay_unavailable``
instead of a second copy of the secret or a second resource.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone

from core.errors import problem_response
from core.models import IdempotencyRecord

HEADER = "HTTP_IDEMPOTENCY_KEY"
REPLAYED_HEADERS = ("ETag", "Location", "Content-Location")
# Answers that say "not you" or "not now" are not kept: a retry after Retry-After, or with the
# right key, runs the request; and callers without a valid key cannot grow the table.
NOT_KEPT = frozenset({401, 403, 429})


def _scope(request: HttpRequest, key: str) -> str:
    credential = request.META.get("HTTP_AUTHORIZATION", "")
    raw = "\x1f".join([credential, request.method or "", request.path, key])
    return hashlib.sha256(raw.encode()).hexdigest()


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(bytes(record.body), status=record.status_code, content_type=record.content_type)
    for name, value in record.headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def _no_store(response: HttpResponse) -> bool:
    return "no-store" in response.get("Cache-Control", "").lower()


def _claim(scope: str, fingerprint: str) -> IdempotencyRecord | None:
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(scope=scope, fingerprint=fingerprint)
    except IntegrityError:
        return None


def _release_abandoned(scope: str) -> bool:
    """Forget a claim whose request never finished (its process died), so the key can be used again."""
    cutoff = timezone.now() - settings.IDEMPOTENCY_ABANDONED_AFTER
    deleted, _ = IdempotencyRecord.objects.filter(scope=scope, status_code__isnull=True, created_at__lt=cutoff).delete()
    return bool(deleted)


def _may_keep(request: HttpRequest) -> bool:
    """Records are kept only for a route that exists, called with an API key: an anonymous
    caller, or one probing unknown paths, cannot grow the table. (A key that fails
    authentication gets 401, whose record is deleted.)"""
    if not request.META.get("HTTP_AUTHORIZATION", "").lower().startswith("api-key "):
        return False
    try:
        resolve(request.path_info)
    except Resolver404:
        return False
    return True


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.META.get(HEADER)
        if request.method != "POST" or key is None or not request.path.startswith("/api/"):
            return self.get_response(request)
        if not _may_keep(request):
            return self.get_response(request)
        if not 1 <= len(key) <= 255:
            return problem_response(400, "validation_error", "Idempotency-Key must be 1 to 255 characters.", request)
        scope = _scope(request, key)
        try:
            fingerprint = hashlib.sha256(request.body).hexdigest()
        except RequestDataTooBig:
            return problem_response(413, "payload_too_large", "The request body is too large.", request)
        record = _claim(scope, fingerprint)
        if record is None and _release_abandoned(scope):
            record = _claim(scope, fingerprint)
        if record is None:
            return self._repeat(request, scope, fingerprint)

        try:
            response = self.get_response(request)
        except BaseException:
            record.delete()
            raise
        if (
            response.status_code in NOT_KEPT
            or response.status_code >= 500
            or getattr(response, "streaming", False)
            or not getattr(getattr(request, "user", None), "is_authenticated", False)
        ):
            record.delete()
            return response
        record.status_code = response.status_code
        if _no_store(response):
            record.headers = {"Cache-Control": "no-store"}
        else:
            record.content_type = response.get("Content-Type", "")
            record.headers = {name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)}
            record.body = response.content
        record.save(update_fields=["status_code", "content_type", "headers", "body"])
        return response

    def _repeat(self, request: HttpRequest, scope: str, fingerprint: str) -> HttpResponse:
        record = IdempotencyRecord.objects.filter(scope=scope).first()
        if record is None:  # purged or failed meanwhile: let the client retry
            return problem_response(
                409, "idempotency_key_in_use", "This Idempotency-Key is being processed; retry shortly.", request
            )
        if record.fingerprint != fingerprint:
            return problem_response(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request body.",
                request,
            )
        if record.status_code is None:
            return problem_response(
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                request,
            )
        if "no-store" in record.headers.get("Cache-Control", ""):
            return problem_response(
                409,
                "idempotency_replay_unavailable",
                "A request with this Idempotency-Key was done; its answer showed a secret once and is not kept. "
                "Read the resource, or rotate or reissue the secret.",
                request,
            )
        return _replay(record)


def idempotency_records_purge(*, older_than: timedelta | None = None) -> int:
    """Delete records past their time to live; returns how many."""
    cutoff = timezone.now() - (older_than or settings.IDEMPOTENCY_KEY_TTL)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
