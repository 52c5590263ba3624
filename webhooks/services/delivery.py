"""Webhook delivery: fan-out, claims and leases, and the state machine of attempts.

A delivery is ``pending`` until it ``succeeded``, ``failed`` (last attempt of its
schedule, endpoint gone or disabled) or was ``cancelled`` (its recipient may no
longer see the event). Whoever attempts a pending delivery first claims it: a
lease token and expiry written under ``SELECT ... FOR UPDATE SKIP LOCKED``, so
any number of workers and sweepers share the table without double-claiming,
and a claim whose worker died lapses with its lease.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from webhooks import http
from webhooks.catalog import ENDPOINT_DISABLED, subscribed
from webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Endpoint, Event, new_lease_token
from webhooks.registry import audience_filter
from webhooks.services.endpoints import endpoint_disable, endpoint_signing_secrets
from webhooks.services.payloads import envelope_body
from webhooks.services.retry import retry_delay

Claim = tuple[int, str]
"""(delivery id, lease token): what a worker needs to attempt a delivery it claimed."""


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


@dataclass(frozen=True)
class SweepResult:
    dispatched: int
    claimed: int


def _lease_seconds() -> float:
    # A lease shorter than an attempt could hand a delivery still in flight to a second worker.
    return max(settings.WEBHOOKS_LEASE, 2 * settings.WEBHOOKS_TIMEOUT).total_seconds()


def _lease(now: datetime) -> dict[str, Any]:
    return {"lease_token": new_lease_token(), "lease_expires_at": now + timedelta(seconds=_lease_seconds())}


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
        lease["sending_until"] = now + settings.WEBHOOKS_TIMEOUT + timedelta(seconds=1)
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
    body = envelope_body(event)
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
    young = timezone.now() - settings.WEBHOOKS_SWEEP_GRACE
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
        sending_until = now + settings.WEBHOOKS_TIMEOUT + timedelta(seconds=1)
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
        body = envelope_body(event)
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
        connect_timeout=settings.WEBHOOKS_CONNECT_TIMEOUT.total_seconds(),
        total_timeout=settings.WEBHOOKS_TIMEOUT.total_seconds(),
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


def _disable_after() -> timedelta:
    return settings.WEBHOOKS_DISABLE_AFTER
