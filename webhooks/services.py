"""Writes of the webhooks app: the outbox, endpoints, and the delivery state machine.

A delivery is ``pending`` until it ``succeeded``, ``failed`` (last attempt of its
schedule, endpoint gone or disabled) or was ``cancelled`` (its recipient may no
longer see the event). Whoever attempts a pending delivery first claims it: a
lease token and expiry written under ``SELECT ... FOR UPDATE SKIP LOCKED``, so
any number of workers and sweepers share the table without double-claiming,
and a claim whose worker died lapses with its lease.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from accounts.models import Account
from core.actors import Actor
from core.audit import audit_log
from core.enqueue import enqueue_on_commit
from core.errors import Conflict, FieldError
from webhooks import http
from webhooks.catalog import ALL, ENDPOINT_DISABLED, EVENT_TYPES, PING, subscribed
from webhooks.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
    Event,
    EventRecipient,
    new_lease_token,
    new_secret,
)
from webhooks.registry import audience_filter

logger = logging.getLogger(__name__)

SECRET_OVERLAP = timedelta(hours=24)
"""How long the previous secret keeps signing beside the new one after a rotation."""

Claim = tuple[int, str]
"""(delivery id, lease token): what a worker needs to attempt a delivery it claimed."""


# --- the outbox ------------------------------------------------------------------------


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    # Decimals become strings, datetimes ISO 8601: exactly what receivers will parse.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


@transaction.atomic
def event_publish(*, event_type: str, data: dict[str, Any], recipients: Iterable[Account | int]) -> Event | None:
    """Record an event for ``recipients`` in the caller's transaction (the outbox).

    Nothing leaves before the transaction commits; on commit the fan-out task is
    enqueued, and the sweeper catches whatever that enqueue loses.
    Returns None when there is nobody to tell.
    """
    account_ids = sorted({r.pk if isinstance(r, Account) else int(r) for r in recipients})
    if not account_ids:
        return None
    event = Event.objects.create(type=event_type, data=_json_safe(data))
    EventRecipient.objects.bulk_create([EventRecipient(event=event, account_id=pk) for pk in account_ids])
    enqueue_on_commit("webhooks.tasks.event_dispatch", event.pk)
    return event


# --- endpoints ------------------------------------------------------------------------


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
    deadline = time.monotonic() + float(settings.WEBHOOKS_TIMEOUT) + 1.0
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


def endpoint_signing_secrets(endpoint: Endpoint, *, now: datetime | None = None) -> list[str]:
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
def endpoint_ping(*, endpoint: Endpoint) -> Delivery:
    """Send a ``webhook.ping`` event to this endpoint alone, right away."""
    if not endpoint.enabled:
        raise Conflict("Enable the endpoint before pinging it.", code="endpoint_disabled")
    now = timezone.now()
    event = Event.objects.create(
        type=PING,
        data={"endpoint": {"id": endpoint.pk, "url": endpoint.url}, "message": "Ping from the back office."},
        dispatched_at=now,
    )
    delivery = Delivery.objects.create(event=event, endpoint=endpoint, next_attempt_at=_handed_off(now))
    enqueue_on_commit("webhooks.tasks.delivery_send", delivery.pk)
    return delivery


# --- redelivery ----------------------------------------------------------------------


@transaction.atomic
def delivery_redeliver(*, delivery: Delivery, actor: Actor) -> Delivery:
    """Send a delivery again now, with a fresh retry schedule and the same ``webhook-id``."""
    delivery = Delivery.objects.select_for_update(of=("self",)).select_related("endpoint").get(pk=delivery.pk)
    if not delivery.endpoint.enabled:
        raise Conflict("The endpoint is disabled; enable it before redelivering.", code="endpoint_disabled")
    now = timezone.now()
    delivery.round_attempts = 0
    delivery.next_attempt_at = _handed_off(now)
    in_flight = (
        delivery.status == DeliveryStatus.PENDING
        and bool(delivery.lease_token)
        and (delivery.lease_expires_at is not None and delivery.lease_expires_at > now)
    )
    if not in_flight:
        # A delivery in flight just gets a fresh schedule; the others are due now and sent at once.
        delivery.status = DeliveryStatus.PENDING
        delivery.completed_at = None
        delivery.lease_token = ""
        delivery.lease_expires_at = None
        enqueue_on_commit("webhooks.tasks.delivery_send", delivery.pk)
    delivery.save()
    logger.info("Webhook delivery %s redelivered by %s", delivery.pk, actor or "system")
    return delivery


@transaction.atomic
def deliveries_redeliver_failed(*, endpoint: Endpoint, since: datetime, actor: Actor) -> int:
    """Send again every failed delivery of ``endpoint`` created at or after ``since``; returns how many."""
    if not Endpoint.objects.filter(pk=endpoint.pk, enabled=True).exists():
        raise Conflict("The endpoint is disabled; enable it before redelivering.", code="endpoint_disabled")
    count = Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.FAILED, created_at__gte=since).update(
        status=DeliveryStatus.PENDING,
        round_attempts=0,
        next_attempt_at=timezone.now(),
        completed_at=None,
        lease_token="",
        lease_expires_at=None,
    )
    logger.info("%s failed deliveries of endpoint %s since %s redelivered by %s", count, endpoint.pk, since, actor)
    if count:
        enqueue_on_commit("webhooks.tasks.webhooks_sweep")
    return count


# --- fan-out, claims and attempts ---------------------------------------------------------


def _lease_seconds() -> float:
    # A lease shorter than an attempt could hand a delivery still in flight to a second worker.
    return max(float(settings.WEBHOOKS_LEASE_SECONDS), 2 * float(settings.WEBHOOKS_TIMEOUT))


def _lease(now: datetime) -> dict[str, Any]:
    return {"lease_token": new_lease_token(), "lease_expires_at": now + timedelta(seconds=_lease_seconds())}


def _handed_off(now: datetime) -> datetime:
    """When a delivery handed to the fast path (ping, redelivery) becomes the sweeper's: after the grace."""
    return now + timedelta(seconds=float(settings.WEBHOOKS_SWEEP_GRACE))


def _endpoints_lock_shared(*, endpoint_ids: Iterable[int]) -> list[int]:
    """Share-lock endpoint rows, in id order, for the rest of the transaction; return the ids that exist.

    Every writer of deliveries and attempts takes this lock first, and deleting an
    endpoint takes its exclusive lock first: a delete waits for the writers in
    progress, and the writers that come after it find the endpoint gone.
    """
    ids = sorted(set(endpoint_ids))
    if not ids:
        return []
    where, params = "id IN (" + ", ".join(["%s"] * len(ids)) + ")", ids
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""  # SQLite runs one writer at a time
    with connection.cursor() as cursor:
        # Only constant fragments and placeholders are formatted in; the values go as parameters.
        cursor.execute(f"SELECT id FROM webhooks_endpoint WHERE {where} ORDER BY id{lock}", params)  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def _endpoints_lock_shared_rows(*, event_id: int) -> list[Endpoint]:
    """As ``_endpoints_lock_shared`` for an event's recipients, returning the locked rows: one query."""
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
    table = Endpoint._meta.db_table
    return list(
        Endpoint.objects.raw(
            # Only constant fragments are formatted in; the event id goes as a parameter.
            f"SELECT * FROM {table} WHERE account_id IN "  # noqa: S608
            f"(SELECT account_id FROM webhooks_eventrecipient WHERE event_id = %s) ORDER BY id{lock}",
            [event_id],
        )
    )


def event_fanout(*, event_id: int) -> list[Claim]:
    """Create one delivery per subscribed endpoint of the event's recipients, claimed by the caller."""
    return _fanout(event_id, start=False)[0]


def event_fanout_start(*, event_id: int) -> list[Outgoing]:
    """The fast path: fan the event out and start every delivery in the same transaction.

    As ``event_fanout`` then ``deliveries_start``, without the second transaction: the
    endpoints are share-locked and the audience checked once, the deliveries are born
    under their attempt's token and marked on the wire, and the body is signed per
    endpoint. A started delivery the caller cannot send at once is started again
    (``deliveries_start``) when it can, under a fresh token.
    """
    return _fanout(event_id, start=True)[1]


@transaction.atomic
def _fanout(event_id: int, *, start: bool) -> tuple[list[Claim], list[Outgoing]]:
    """Create one delivery per subscribed endpoint of the event's recipients, claimed by the caller.

    Runs once per event: whoever locks the undispatched event first does it. The
    deliveries are born claimed (leased to the caller, who sends them at once), so
    no sweeper takes them while the fast path holds them. Endpoints that are
    disabled get a ``failed`` delivery, so their owner can redeliver it after
    re-enabling them (the notice that an endpoint was disabled skips that endpoint).
    """
    event = Event.objects.select_for_update(skip_locked=True).filter(pk=event_id, dispatched_at__isnull=True).first()
    if event is None:
        return [], []
    now = timezone.now()
    about = event.data.get("endpoint", {}).get("id") if event.type == ENDPOINT_DISABLED else None
    endpoints = [
        endpoint
        for endpoint in _endpoints_lock_shared_rows(event_id=event.pk)
        if subscribed(endpoint.event_types, event.type) and endpoint.pk != about
    ]
    # Only recipients with a subscribed endpoint are checked: one query, however many recipients.
    allowed = audience_filter(event.type, event.data, {endpoint.account_id for endpoint in endpoints})
    lease = _lease(now)
    if start:
        lease["sending_until"] = now + timedelta(seconds=float(settings.WEBHOOKS_TIMEOUT) + 1.0)
    deliveries = []
    for endpoint in endpoints:
        if endpoint.account_id not in allowed:
            continue
        if endpoint.enabled:
            deliveries.append(Delivery(event=event, endpoint=endpoint, next_attempt_at=now, **lease))
        else:
            deliveries.append(
                Delivery(
                    event=event,
                    endpoint=endpoint,
                    status=DeliveryStatus.FAILED,
                    last_error="Endpoint disabled.",
                    completed_at=now,
                )
            )
    created = [d for d in Delivery.objects.bulk_create(deliveries) if d.status == DeliveryStatus.PENDING]
    event.dispatched_at = now
    event.save(update_fields=["dispatched_at"])
    token = str(lease["lease_token"])
    if not start:
        return [(d.pk, token) for d in created], []
    body = json.dumps(envelope(event), separators=(",", ":"))
    return [], [_outgoing(d, token, body=body) for d in created]


def _claimable(now: datetime) -> QuerySet[Delivery]:
    return Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now).filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
    )


@transaction.atomic
def delivery_claim(*, delivery_id: int) -> str | None:
    """Claim one pending delivery nobody holds, due or not (the fast path); return the lease token, or None."""
    now = timezone.now()
    free = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
    )
    if free.select_for_update(skip_locked=True).values_list("pk").first() is None:
        return None
    lease = _lease(now)
    Delivery.objects.filter(pk=delivery_id).update(**lease)
    return str(lease["lease_token"])


@transaction.atomic
def deliveries_claim_due(*, limit: int = 500) -> list[Claim]:
    """Claim up to ``limit`` pending deliveries that are due and not leased by a live worker."""
    now = timezone.now()
    ids = list(
        _claimable(now)
        .select_for_update(skip_locked=True)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return []
    lease = _lease(now)
    Delivery.objects.filter(pk__in=ids).update(**lease)
    return [(pk, lease["lease_token"]) for pk in ids]


@transaction.atomic
def deliveries_defer(*, claims: Iterable[Claim], seconds: float) -> int:
    """Give claims back, due again in ``seconds`` (a receiver already has its share in flight)."""
    now = timezone.now()
    deferred = 0
    for token, ids in _by_token(claims).items():
        deferred += Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.PENDING, lease_token=token).update(
            lease_token="",
            lease_expires_at=None,
            sending_until=None,
            next_attempt_at=now + timedelta(seconds=seconds),
        )
    return deferred


def _by_token(claims: Iterable[Claim]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for delivery_id, token in claims:
        grouped.setdefault(token, []).append(delivery_id)
    return grouped


def claims_endpoints(*, claims: Iterable[Claim]) -> dict[int, int]:
    """delivery id -> endpoint id, for the claims whose delivery still exists."""
    ids = [delivery_id for delivery_id, _ in claims]
    return dict(Delivery.objects.filter(pk__in=ids).values_list("id", "endpoint_id"))


@dataclass(frozen=True)
class SweepResult:
    dispatched: int
    claimed: int


def webhooks_sweep(*, deliver: Callable[[int, str], None], limit: int = 500) -> SweepResult:
    """The safety net: fan out events whose fast path was lost, then claim every due delivery
    and hand each claim to ``deliver``.

    It leaves alone what the fast path may still be doing: events younger than
    WEBHOOKS_SWEEP_GRACE (their dispatch message is probably queued) and
    deliveries under a live lease (claimed at fan-out, ping or redelivery). An
    event it dispatches first is skipped by its late dispatch message, so a
    delivery is sent once however far behind the queue is.
    """
    dispatched = 0
    claimed = 0
    young = timezone.now() - timedelta(seconds=float(settings.WEBHOOKS_SWEEP_GRACE))
    undispatched = Event.objects.filter(dispatched_at__isnull=True, created_at__lte=young)
    for event_id in undispatched.order_by("id").values_list("id", flat=True)[:limit]:
        for claim in event_fanout(event_id=event_id):
            deliver(*claim)
            claimed += 1
        dispatched += 1
    for claim in deliveries_claim_due(limit=limit):
        deliver(*claim)
        claimed += 1
    return SweepResult(dispatched=dispatched, claimed=claimed)


def envelope(event: Event) -> dict[str, Any]:
    """What receivers get in the body, and what the polling feed lists."""
    return {
        "id": event.public_id,
        "type": event.type,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def retry_delay(*, round_attempts: int, status_code: int | None, retry_after: str | None, now: datetime) -> float:
    """Seconds to wait after the ``round_attempts``-th failed attempt: the schedule with jitter,
    or the receiver's Retry-After on 429/503 when that is longer (capped)."""
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    base = float(schedule[min(round_attempts, len(schedule)) - 1])
    jitter = settings.WEBHOOKS_RETRY_JITTER
    delay = base * random.uniform(1 - jitter, 1 + jitter) if jitter else base
    if status_code in (429, 503):
        asked = _retry_after(retry_after, now)
        if asked is not None:
            delay = max(delay, min(asked, settings.WEBHOOKS_RETRY_AFTER_MAX))
    return delay


def _disable_after() -> timedelta:
    value = settings.WEBHOOKS_DISABLE_AFTER
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


@dataclass(frozen=True)
class Outgoing:
    """A started attempt: what to POST where, and the token that owns the delivery meanwhile."""

    delivery_id: int
    endpoint_id: int
    lease_token: str
    url: str
    body: bytes
    headers: dict[str, str]
    signed_at: datetime


def deliveries_start(*, claims: Iterable[Claim]) -> list[Outgoing]:
    """Start attempts for claimed deliveries: what to send, signed, for those still to be sent.

    Under the endpoints' share locks (see ``_endpoints_lock_shared``), each claim is
    traded for a token of this attempt alone, so of two copies of the same task
    message only the first sends; the delivery is marked on the wire until the
    attempt's deadline. Deliveries of disabled endpoints fail and those whose
    recipient may no longer see the event are cancelled, without a request.
    """
    claims = list(claims)
    if not claims:
        return []
    with transaction.atomic():
        now = timezone.now()
        endpoint_ids = Delivery.objects.filter(pk__in=[c[0] for c in claims]).values_list("endpoint_id", flat=True)
        _endpoints_lock_shared(endpoint_ids=set(endpoint_ids))
        token = new_lease_token()
        sending_until = now + timedelta(seconds=float(settings.WEBHOOKS_TIMEOUT) + 1.0)
        owned: list[int] = []
        for claim_token, ids in _by_token(claims).items():
            owned_now = list(
                Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.PENDING, lease_token=claim_token)
                .exclude(lease_token="")
                .values_list("pk", flat=True)
            )
            Delivery.objects.filter(pk__in=owned_now).update(
                lease_token=token,
                lease_expires_at=now + timedelta(seconds=_lease_seconds()),
                sending_until=sending_until,
            )
            owned += owned_now
        if not owned:
            return []
        deliveries = list(Delivery.objects.select_related("event", "endpoint").filter(pk__in=owned).order_by("id"))
        allowed: dict[int, set[int]] = {}
        for delivery in deliveries:
            if delivery.event_id not in allowed:
                event = delivery.event
                recipients = {d.endpoint.account_id for d in deliveries if d.event_id == event.pk}
                allowed[event.pk] = audience_filter(event.type, event.data, recipients)
        outgoing: list[Outgoing] = []
        for delivery in deliveries:
            endpoint, event = delivery.endpoint, delivery.event
            if not endpoint.enabled:
                _delivery_close(delivery, token, DeliveryStatus.FAILED, "Endpoint disabled.")
                continue
            if endpoint.account_id not in allowed[event.pk]:
                _delivery_close(
                    delivery, token, DeliveryStatus.CANCELLED, "The recipient may no longer see this event."
                )
                continue
            outgoing.append(_outgoing(delivery, token))
        return outgoing


def _outgoing(delivery: Delivery, token: str, *, body: str | None = None) -> Outgoing:
    endpoint, event = delivery.endpoint, delivery.event
    if body is None:
        body = json.dumps(envelope(event), separators=(",", ":"))
    signed_at = timezone.now()
    signatures = [
        Webhook(secret).sign(event.public_id, signed_at, body)
        for secret in endpoint_signing_secrets(endpoint, now=signed_at)
    ]
    return Outgoing(
        delivery_id=delivery.pk,
        endpoint_id=endpoint.pk,
        lease_token=token,
        url=endpoint.url,
        body=body.encode(),
        headers={
            "Content-Type": "application/json",
            "webhook-id": event.public_id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": " ".join(signatures),
        },
        signed_at=signed_at,
    )


def outgoing_post(outgoing: Outgoing) -> http.PostResult:
    """The HTTP request of a started attempt (no database work: safe on any thread)."""
    return http.post(
        outgoing.url,
        body=outgoing.body,
        headers=outgoing.headers,
        allow_private=settings.WEBHOOKS_ALLOW_PRIVATE_URLS,
        connect_timeout=settings.WEBHOOKS_CONNECT_TIMEOUT,
        total_timeout=settings.WEBHOOKS_TIMEOUT,
        max_body=settings.WEBHOOKS_MAX_RESPONSE_BYTES,
    )


def delivery_attempt(*, delivery_id: int, lease_token: str) -> DeliveryAttempt | None:
    """Make one attempt at a delivery this caller claimed, log it, and schedule what comes next.

    Returns None without sending when the claim is no longer the caller's (another
    worker took it after the lease ran out) or the delivery is done.
    """
    started = deliveries_start(claims=[(delivery_id, lease_token)])
    if not started:
        return None
    attempts = attempts_record(results=[(started[0], outgoing_post(started[0]))])
    return attempts[0] if attempts else None


def _delivery_close(delivery: Delivery, lease_token: str, status: str, reason: str) -> None:
    Delivery.objects.filter(pk=delivery.pk, lease_token=lease_token, status=DeliveryStatus.PENDING).update(
        status=status,
        last_error=reason,
        completed_at=timezone.now(),
        next_attempt_at=None,
        lease_token="",
        lease_expires_at=None,
        sending_until=None,
    )


def _response_text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _error(result: http.PostResult) -> str:
    code = result.status_code
    if code is not None:
        return result.error or ("" if 200 <= code < 300 else f"HTTP {code}")
    return result.error or "No response."


def attempts_record(*, results: Iterable[tuple[Outgoing, http.PostResult]]) -> list[DeliveryAttempt]:
    """Log attempts and schedule what comes next for each delivery, in one transaction for all of them.

    A delivery whose endpoint was deleted meanwhile is skipped; a claim lost
    meanwhile (redelivery, endpoint disabled) keeps the attempt on record only.
    Then each endpoint's health: a success ends its failure streak, a 410 or
    failing for WEBHOOKS_DISABLE_AFTER disables it.
    """
    results = list(results)
    if not results:
        return []
    attempts = _attempts_log(results)
    # After the deliveries' transaction: endpoint rows are only ever locked before delivery
    # rows (share locks at start and record, endpoint_disable), never after, so no deadlock.
    by_delivery = {outgoing.delivery_id: (outgoing, result) for outgoing, result in results}
    healthy: set[int] = set()
    for attempt in attempts:
        outgoing, result = by_delivery[attempt.delivery_id]
        code = result.status_code
        if code is not None and 200 <= code < 300:
            healthy.add(outgoing.endpoint_id)
        else:
            _endpoint_health(outgoing.endpoint_id, code, attempt.error, outgoing.signed_at)
    if healthy:
        Endpoint.objects.filter(pk__in=healthy, failing_since__isnull=False).update(failing_since=None)
    return attempts


@transaction.atomic
def _attempts_log(results: list[tuple[Outgoing, http.PostResult]]) -> list[DeliveryAttempt]:
    now = timezone.now()
    live = set(_endpoints_lock_shared(endpoint_ids={outgoing.endpoint_id for outgoing, _ in results}))
    ids = sorted(outgoing.delivery_id for outgoing, _ in results if outgoing.endpoint_id in live)
    deliveries = {d.pk: d for d in Delivery.objects.select_for_update().filter(pk__in=ids).order_by("id")}
    attempts: list[DeliveryAttempt] = []
    changed: list[Delivery] = []
    for outgoing, result in results:
        delivery = deliveries.get(outgoing.delivery_id)
        if delivery is None:
            continue  # the endpoint was deleted while the request was in flight
        code = result.status_code
        succeeded = code is not None and 200 <= code < 300
        error = _error(result)
        delivery.attempt_count += 1
        attempts.append(
            DeliveryAttempt(
                delivery=delivery,
                number=delivery.attempt_count,
                started_at=outgoing.signed_at,
                duration_ms=result.duration_ms,
                status_code=code,
                error=error[:500],
                response_body=_response_text(result.body),
                url=outgoing.url,
            )
        )
        delivery.last_attempt_at = outgoing.signed_at
        delivery.last_status_code = code
        delivery.last_error = error[:500]
        if delivery.lease_token in (outgoing.lease_token, ""):
            delivery.sending_until = None  # off the wire (a disabled endpoint's claims were cleared meanwhile)
        still_ours = delivery.status == DeliveryStatus.PENDING and delivery.lease_token == outgoing.lease_token
        if still_ours:
            delivery.lease_token = ""
            delivery.lease_expires_at = None
            if succeeded:
                delivery.status = DeliveryStatus.SUCCEEDED
                delivery.next_attempt_at = None
                delivery.completed_at = now
            else:
                delivery.round_attempts += 1
                if code == 410 or delivery.round_attempts > len(settings.WEBHOOKS_RETRY_SCHEDULE):
                    delivery.status = DeliveryStatus.FAILED
                    delivery.next_attempt_at = None
                    delivery.completed_at = now
                else:
                    delay = retry_delay(
                        round_attempts=delivery.round_attempts,
                        status_code=code,
                        retry_after=result.headers.get("retry-after"),
                        now=now,
                    )
                    delivery.next_attempt_at = now + timedelta(seconds=delay)
        changed.append(delivery)
    if not changed:
        return []
    _deliveries_update(
        changed,
        [
            "attempt_count",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "lease_token",
            "lease_expires_at",
            "sending_until",
            "status",
            "next_attempt_at",
            "completed_at",
            "round_attempts",
        ],
    )
    return DeliveryAttempt.objects.bulk_create(attempts)


def _deliveries_update(deliveries: list[Delivery], fields: list[str]) -> None:
    """Write ``fields`` of many deliveries in one statement.

    On PostgreSQL an ``UPDATE ... FROM (VALUES ...)``: Django's ``bulk_update`` builds a
    ``CASE WHEN`` per field and row, whose construction costs the worker far more CPU than
    the database spends on it when hundreds of answers are recorded at once.
    """
    if connection.vendor != "postgresql":
        Delivery.objects.bulk_update(deliveries, fields)
        return
    meta = Delivery._meta
    columns = [field for name in fields if isinstance(field := meta.get_field(name), models.Field)]
    pk = meta.pk
    assert pk is not None
    casts = [pk.db_type(connection), *(field.db_type(connection) for field in columns)]
    row = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    names = [pk.column, *(field.column for field in columns)]
    assignments = ", ".join(f'"{field.column}" = v."{field.column}"' for field in columns)
    aliases = ", ".join(f'"{name}"' for name in names)
    for start in range(0, len(deliveries), 1000):
        chunk = deliveries[start : start + 1000]
        params: list[Any] = []
        for delivery in chunk:
            params.append(delivery.pk)
            params += [field.get_db_prep_save(getattr(delivery, field.attname), connection) for field in columns]
        # Only column names and types from the model are formatted in; the values go as parameters.
        sql = (
            f'UPDATE "{meta.db_table}" AS d SET {assignments} '  # noqa: S608
            f"FROM (VALUES {', '.join([row] * len(chunk))}) AS v({aliases}) "
            f'WHERE d."{pk.column}" = v."{pk.column}"'
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _endpoint_health(endpoint_id: int, code: int | None, error: str, started_at: datetime) -> None:
    """A success ends the endpoint's failure streak; 410, or failing for WEBHOOKS_DISABLE_AFTER, disables it."""
    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return
    if code is not None and 200 <= code < 300:
        if endpoint.failing_since is not None:
            Endpoint.objects.filter(pk=endpoint_id, failing_since__isnull=False).update(failing_since=None)
    elif code == 410:
        endpoint_disable(endpoint=endpoint, reason="The endpoint answered 410 Gone.")
    else:
        if endpoint.failing_since is None:
            Endpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(failing_since=started_at)
            endpoint.refresh_from_db(fields=["failing_since"])
        failing_since = endpoint.failing_since
        if failing_since is not None and timezone.now() - failing_since >= _disable_after():
            endpoint_disable(
                endpoint=endpoint,
                reason=f"Every delivery failed since {failing_since:%Y-%m-%d %H:%M} UTC (last error: {error[:200]}).",
            )
