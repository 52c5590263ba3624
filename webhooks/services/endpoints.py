"""Webhook endpoints: registration, changes, secrets, enabling, disabling and deletion,
and the fences that keep attempts away from endpoints while their audience changes."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from core.actors import Actor
from core.audit import audit_log
from core.enqueue import enqueue_on_commit
from core.errors import Conflict, FieldError
from webhooks import http
from webhooks.catalog import ALL, ENDPOINT_DISABLED, EVENT_TYPES, PING
from webhooks.models import Delivery, DeliveryStatus, Endpoint, Event, new_secret
from webhooks.services.outbox import event_publish
from webhooks.services.retry import handed_off

logger = logging.getLogger(__name__)

SECRET_OVERLAP = timedelta(hours=24)
"""How long the previous secret keeps signing beside the new one after a rotation."""


def _url_validate(url: str) -> str:
    url = url.strip()
    try:
        http.url_check(url, allow_private=settings.WEBHOOKS_ALLOW_PRIVATE_URLS)
    except http.UrlNotAllowed as exc:
        raise FieldError("url", str(exc)) from exc
    return url


def _event_types_validate(event_types: Iterable[str]) -> list[str]:
    types = sorted(set(event_types))
    if ALL in types:
        return [ALL]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise FieldError(
            "event_types",
            f"Unknown event type(s): {', '.join(unknown)}. Known types: {', '.join(EVENT_TYPES)}; or '*' for all.",
        )
    return types


@transaction.atomic
def endpoint_create(
    *, account: Account, url: str, event_types: Iterable[str] = (), description: str = "", actor: Actor = None
) -> Endpoint:
    """Register a webhook endpoint for ``account``; the URL must be one webhooks may be sent to,
    and an account has at most WEBHOOKS_MAX_ENDPOINTS_PER_ACCOUNT endpoints."""
    Account.objects.select_for_update().filter(pk=account.pk).first()  # one registration at a time per account
    limit = settings.WEBHOOKS_MAX_ENDPOINTS_PER_ACCOUNT
    if Endpoint.objects.filter(account=account).count() >= limit:
        raise Conflict(
            f"An account may have at most {limit} webhook endpoints; delete one first.", code="too_many_endpoints"
        )
    endpoint = Endpoint.objects.create(
        account=account,
        url=_url_validate(url),
        event_types=_event_types_validate(event_types),
        description=description,
    )
    audit_log(obj=endpoint, action="created", actor=actor or account, message=_endpoint_text(endpoint))
    return endpoint


def _endpoint_text(endpoint: Endpoint) -> str:
    return f"{endpoint.url} for {', '.join(endpoint.event_types) or 'every event'}"


@transaction.atomic
def endpoint_update(
    *,
    endpoint: Endpoint,
    actor: Actor,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> Endpoint:
    """Change an endpoint; enabling it clears the disabled reason and the failure streak."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = (endpoint.url, endpoint.event_types, endpoint.description)
    if url is not None:
        endpoint.url = _url_validate(url)
    if event_types is not None:
        endpoint.event_types = _event_types_validate(event_types)
    if description is not None:
        endpoint.description = description
    endpoint.save()
    changed = [
        f"{name} {old!r} -> {new!r}"
        for name, old, new in zip(
            ("url", "event types", "description"),
            before,
            (endpoint.url, endpoint.event_types, endpoint.description),
            strict=True,
        )
        if old != new
    ]
    if changed:
        audit_log(obj=endpoint, action="changed", actor=actor, message="; ".join(changed) + ".")
    if enabled is True and not endpoint.enabled:
        endpoint = endpoint_enable(endpoint=endpoint, actor=actor)
    elif enabled is False and endpoint.enabled:
        endpoint_disable(endpoint=endpoint, reason="Disabled by its owner.", actor=actor, notify=False)
        endpoint.refresh_from_db()
    return endpoint


def endpoint_delete(*, endpoint: Endpoint, actor: Actor = None) -> None:
    """Delete an endpoint with its deliveries; events stay in the owner's feed.

    Ordering rule: the endpoint is first disabled (no attempt starts after that
    commits), then the attempts already on the wire are waited for (at most
    WEBHOOKS_TIMEOUT), then the rows go, under the endpoint's row lock that every
    writer of its deliveries takes first. So the delete never conflicts with a
    delivery being recorded, and nothing reaches the receiver after it returns.
    """
    with transaction.atomic():
        locked = Endpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
        if locked is None:
            return
        if locked.enabled:
            Endpoint.objects.filter(pk=endpoint.pk).update(
                enabled=False, disabled_at=timezone.now(), disabled_reason="Being deleted.", updated_at=timezone.now()
            )
    sends_settle(endpoint_ids=[endpoint.pk])
    with transaction.atomic():
        locked = Endpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
        if locked is not None:
            audit_log(obj=locked, action="deleted", actor=actor or locked.account, message=_endpoint_text(locked))
            locked.delete()


def recipients_fence(*, account_ids: Iterable[int]) -> None:
    """In the caller's transaction, hold off attempts to these accounts' endpoints until it ends.

    For a change that takes an audience away: attempts starting meanwhile wait for it
    and then see it; ``sends_settle`` after the commit waits for those already sent.
    """
    list(Endpoint.objects.select_for_update().filter(account_id__in=list(account_ids)).order_by("id").values("pk"))


def sends_settle(*, endpoint_ids: Iterable[int] = (), account_ids: Iterable[int] = ()) -> bool:
    """Wait until no attempt to these endpoints (or these accounts' endpoints) is on the wire.

    Callers first make sure no new attempt may start (an endpoint disabled, an
    audience taken away, committed): an attempt checks both under the endpoint's
    row lock when it starts. Waits at most WEBHOOKS_TIMEOUT plus a second;
    returns False if attempts were still running then (their deadline had not passed).
    """
    ids, accounts = list(endpoint_ids), list(account_ids)
    flights = Delivery.objects.filter(sending_until__isnull=False)
    flights = flights.filter(Q(endpoint_id__in=ids) | Q(endpoint__account_id__in=accounts))
    deadline = time.monotonic() + settings.WEBHOOKS_TIMEOUT.total_seconds() + 1.0
    while True:
        if not flights.filter(sending_until__gt=timezone.now()).exists():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


@transaction.atomic
def endpoint_rotate_secret(*, endpoint: Endpoint, actor: Actor = None) -> Endpoint:
    """Give the endpoint a new secret; the old one keeps signing beside it for 24 hours."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + SECRET_OVERLAP
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    audit_log(
        obj=endpoint,
        action="secret rotated",
        actor=actor or endpoint.account,
        message=f"The previous secret signs too until {endpoint.previous_secret_expires_at:%Y-%m-%d %H:%M} UTC.",
    )
    return endpoint


class Signer(Protocol):
    """What signing needs of an endpoint: its secrets (an ``Endpoint``, or a row read without one)."""

    @property
    def secret(self) -> str: ...
    @property
    def previous_secret(self) -> str: ...
    @property
    def previous_secret_expires_at(self) -> datetime | None: ...


def endpoint_signing_secrets(endpoint: Signer, *, now: datetime | None = None) -> list[str]:
    now = now or timezone.now()
    secrets = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        secrets.append(endpoint.previous_secret)
    return secrets


@transaction.atomic
def endpoint_enable(*, endpoint: Endpoint, actor: Actor) -> Endpoint:
    """Re-enable a disabled endpoint (owner or Ops). Deliveries failed meanwhile stay failed until redelivered."""
    Endpoint.objects.filter(pk=endpoint.pk).update(
        enabled=True, disabled_at=None, disabled_reason="", failing_since=None, updated_at=timezone.now()
    )
    logger.info("Webhook endpoint %s enabled by %s", endpoint.pk, actor)
    audit_log(obj=endpoint, action="enabled", actor=actor, message="Re-enabled; the failure streak starts again.")
    return Endpoint.objects.get(pk=endpoint.pk)


@transaction.atomic
def endpoint_disable(*, endpoint: Endpoint, reason: str, actor: Actor = None, notify: bool = True) -> bool:
    """Disable an endpoint with a reason, fail its pending deliveries, and tell its owner.

    The owner learns through a ``webhook_endpoint.disabled`` event (their other
    endpoints and their feed). Returns False when it was already disabled.
    """
    now = timezone.now()
    changed = Endpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_at=now, disabled_reason=reason[:500], updated_at=now
    )
    if not changed:
        return False
    Delivery.objects.filter(endpoint_id=endpoint.pk, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED,
        last_error="Endpoint disabled.",
        completed_at=now,
        next_attempt_at=None,
        lease_token="",
        lease_expires_at=None,
    )
    logger.warning("Webhook endpoint %s disabled by %s: %s", endpoint.pk, actor or "system", reason)
    audit_log(obj=endpoint, action="disabled", actor=actor, message="Pending deliveries failed.", reason=reason, at=now)
    if notify:
        event_publish(
            event_type=ENDPOINT_DISABLED,
            data={
                "endpoint": {"id": endpoint.pk, "url": endpoint.url, "description": endpoint.description},
                "reason": reason,
                "disabled_at": now,
            },
            recipients=[endpoint.account_id],
        )
    return True


@transaction.atomic
def endpoint_ping(*, endpoint: Endpoint, actor: Actor) -> Delivery:
    """Send a ``webhook.ping`` event to this endpoint alone, right away."""
    if not endpoint.enabled:
        raise Conflict("Enable the endpoint before pinging it.", code="endpoint_disabled")
    now = timezone.now()
    event = Event.objects.create(
        type=PING,
        data={"endpoint": {"id": endpoint.pk, "url": endpoint.url}, "message": "Ping from the back office."},
        dispatched_at=now,
    )
    delivery = Delivery.objects.create(event=event, endpoint=endpoint, next_attempt_at=handed_off(now))
    audit_log(obj=endpoint, action="pinged", actor=actor, message=f"{PING} {event.public_id} sent.", at=now)
    enqueue_on_commit("webhooks.tasks.delivery_send", delivery.pk)
    return delivery
