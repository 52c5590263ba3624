"""Webhook delivery: fan-out, claims and leases, and the state machine of attempts.

A delivery is ``pending`` until it ``succeeded``, ``failed`` (last attempt of its
schedule, endpoint gone or disabled) or was ``cancelled`` (its recipient may no
longer see the event). Whoever attempts a pending delivery first claims it: a
lease token and expiry written under ``SELECT ... FOR UPDATE SKIP LOCKED``, so
any number of workers and sweepers share the table without double-claiming,
and a claim whose worker died lapses with its lease.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from core.enqueue import enqueue_on_commit
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


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


def _in(column: str, values: Collection[Any]) -> tuple[str, list[Any]]:
    """``column`` among ``values``, and its parameters: one array on PostgreSQL (the driver neither
    parses a placeholder per value nor misses its statement cache), a list elsewhere."""
    if _postgresql():
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def _endpoints_lock_shared(*, endpoint_ids: Iterable[int]) -> dict[int, bool]:
    """Share-lock endpoint rows, in id order, for the rest of the transaction; return, for the
    ids that exist, whether the endpoint is on a failure streak.

    Every writer of deliveries and attempts takes this lock first, and deleting an
    endpoint takes its exclusive lock first: a delete waits for the writers in
    progress, and the writers that come after it find the endpoint gone.
    """
    ids = sorted(set(endpoint_ids))
    if not ids:
        return {}
    where, params = _in("id", ids)
    lock = " FOR SHARE" if _postgresql() else ""  # SQLite runs one writer at a time
    with connection.cursor() as cursor:
        # Only constant fragments and placeholders are formatted in; the values go as parameters.
        cursor.execute(
            f"SELECT id, failing_since IS NOT NULL FROM webhooks_endpoint WHERE {where} ORDER BY id{lock}",  # noqa: S608
            params,
        )
        return {row[0]: bool(row[1]) for row in cursor.fetchall()}


@dataclass(frozen=True)
class _Recipient:
    """What sending to an endpoint needs of its row, without a model instance per endpoint."""

    id: int
    account_id: int
    event_types: list[str]
    enabled: bool
    url: str
    secret: str
    previous_secret: str
    previous_secret_expires_at: datetime | None


_RECIPIENT_COLUMNS = "id, account_id, event_types, enabled, url, secret, previous_secret, previous_secret_expires_at"


def _recipients(rows: Iterable[tuple[Any, ...]]) -> list[_Recipient]:
    return [
        _Recipient(pk, account_id, (json.loads(types) if isinstance(types, str) else types) or [], bool(enabled), *rest)
        for pk, account_id, types, enabled, *rest in rows
    ]


def _endpoints_lock_shared_rows(*, event_id: int) -> list[_Recipient]:
    """As ``_endpoints_lock_shared`` for an event's recipients, returning what the fan-out needs
    of the locked rows: one query, and no model instance per endpoint."""
    lock = " FOR SHARE" if _postgresql() else ""
    with connection.cursor() as cursor:
        cursor.execute(
            # Only constant fragments are formatted in; the event id goes as a parameter.
            f"SELECT {_RECIPIENT_COLUMNS} FROM {Endpoint._meta.db_table} WHERE account_id IN "  # noqa: S608
            f"(SELECT account_id FROM webhooks_eventrecipient WHERE event_id = %s) ORDER BY id{lock}",
            [event_id],
        )
        return _recipients(cursor.fetchall())


def _deliveries_insert(
    *, event_id: int, now: datetime, lease: dict[str, Any], pending: list[int], on_wire: int, failed: list[int]
) -> dict[int, int]:
    """Insert an event's deliveries: ``pending`` endpoints' claimed under ``lease`` (the first
    ``on_wire`` of them marked on the wire), ``failed`` ones' closed as disabled. Returns
    endpoint id -> delivery id for the pending ones.

    An ``INSERT ... SELECT`` per kind of row, naming only the endpoint ids: building a model
    instance and a parameter per field and delivery cost a large fan-out most of its time
    before its first request.
    """
    meta = Delivery._meta

    def prep(name: str, value: Any) -> Any:
        field = meta.get_field(name)
        assert isinstance(field, models.Field)
        return field.get_db_prep_save(value, connection)

    created = prep("created_at", now)
    claimed = {
        "status": DeliveryStatus.PENDING.value,
        "next_attempt_at": created,
        "lease_token": lease["lease_token"],
        "lease_expires_at": prep("lease_expires_at", lease["lease_expires_at"]),
        "last_error": "",
        "completed_at": None,
    }
    until = prep("sending_until", now + settings.WEBHOOKS_TIMEOUT + timedelta(seconds=1))
    kinds = [
        (pending[:on_wire], {**claimed, "sending_until": until}),
        (pending[on_wire:], {**claimed, "sending_until": None}),
        (
            failed,
            {
                "status": DeliveryStatus.FAILED.value,
                "next_attempt_at": None,
                "lease_token": "",
                "lease_expires_at": None,
                "sending_until": None,
                "last_error": "Endpoint disabled.",
                "completed_at": created,
            },
        ),
    ]
    ids: dict[int, int] = {}
    for endpoint_ids, values in kinds:
        for start_at in range(0, len(endpoint_ids), 1000):
            chunk = endpoint_ids[start_at : start_at + 1000]
            columns = {"event_id": event_id, "attempt_count": 0, "round_attempts": 0, "created_at": created, **values}
            names = ", ".join(f'"{name}"' for name in columns)
            where, params = _in('"id"', chunk)
            with connection.cursor() as cursor:
                cursor.execute(
                    # Only column names are formatted in; the values go as parameters.
                    f'INSERT INTO "{meta.db_table}" ("endpoint_id", {names}) '  # noqa: S608
                    f'SELECT "id", {", ".join(["%s"] * len(columns))} FROM "{Endpoint._meta.db_table}" '
                    f'WHERE {where} RETURNING "id", "endpoint_id"',
                    [*columns.values(), *params],
                )
                if values["status"] == DeliveryStatus.PENDING.value:
                    ids.update((endpoint_id, pk) for pk, endpoint_id in cursor.fetchall())
    return ids


def event_fanout(*, event_id: int) -> list[Claim]:
    """Create one delivery per subscribed endpoint of the event's recipients, claimed by the caller."""
    return _fanout(event_id, start=False)[0]


def event_fanout_start(*, event_id: int) -> list[Outgoing]:
    """The fast path: fan the event out and start its first WEBHOOKS_FANOUT_CHUNK deliveries
    in the same transaction.

    As ``event_fanout`` then ``deliveries_start``, without the second transaction: the
    endpoints are share-locked and the audience checked once, the deliveries are born
    under their attempt's token and marked on the wire, and the body is signed per
    endpoint. A started delivery the caller cannot send at once is started again
    (``deliveries_start``) when it can, under a fresh token. The claims beyond the
    first chunk go, a chunk per task, to whichever worker is free
    (``webhooks.tasks.deliveries_send``), so a large audience is signed and sent by
    several threads and processes, and its first requests leave after one chunk.
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
    now = timezone.now()
    event = _event_claim(event_id, now)
    if event is None:
        return [], []
    about = event.data.get("endpoint", {}).get("id") if event.type == ENDPOINT_DISABLED else None
    endpoints = [
        endpoint
        for endpoint in _endpoints_lock_shared_rows(event_id=event.pk)
        if subscribed(endpoint.event_types, event.type) and endpoint.id != about
    ]
    # Only recipients with a subscribed endpoint are checked: one query, however many recipients.
    allowed = audience_filter(event.type, event.data, {endpoint.account_id for endpoint in endpoints})
    lease = _lease(now)
    chunk = max(1, int(settings.WEBHOOKS_FANOUT_CHUNK))
    recipients = [endpoint for endpoint in endpoints if endpoint.account_id in allowed]
    pending = [endpoint for endpoint in recipients if endpoint.enabled]
    ids = _deliveries_insert(
        event_id=event.pk,
        now=now,
        lease=lease,
        pending=[endpoint.id for endpoint in pending],
        on_wire=chunk if start else 0,  # only the first chunk is started here
        failed=[endpoint.id for endpoint in recipients if not endpoint.enabled],
    )
    token = str(lease["lease_token"])
    claims = [(ids[endpoint.id], token) for endpoint in pending]
    if not start:
        return claims, []
    for start_at in range(chunk, len(claims), chunk):
        enqueue_on_commit("webhooks.tasks.deliveries_send", claims[start_at : start_at + chunk])
    body = envelope_body(event)
    return [], [_outgoing(ids[endpoint.id], endpoint, event, token, body=body) for endpoint in pending[:chunk]]


def _event_claim(event_id: int, now: datetime) -> Event | None:
    """Mark an undispatched event dispatched and return it, unless another worker holds it
    (``SKIP LOCKED``) or did it already: one statement."""
    if not _postgresql():  # SQLite runs one writer at a time
        if not Event.objects.filter(pk=event_id, dispatched_at__isnull=True).update(dispatched_at=now):
            return None
        return Event.objects.get(pk=event_id)
    table = Event._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            # Only the table name is formatted in; the values go as parameters.
            f"UPDATE {table} SET dispatched_at = %s WHERE id = "  # noqa: S608
            f"(SELECT id FROM {table} WHERE id = %s AND dispatched_at IS NULL FOR UPDATE SKIP LOCKED) "
            "RETURNING id, public_id, type, data, created_at",
            [now, event_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    pk, public_id, event_type, data, created_at = row
    data = json.loads(data) if isinstance(data, str) else data
    return Event(pk=pk, public_id=public_id, type=event_type, data=data, created_at=created_at, dispatched_at=now)


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
        where, params = _in("id", [delivery_id for delivery_id, _ in claims])
        lock = " FOR SHARE" if _postgresql() else ""
        with connection.cursor() as cursor:
            cursor.execute(
                # Only constant fragments are formatted in; the values go as parameters.
                f"SELECT {_RECIPIENT_COLUMNS} FROM {Endpoint._meta.db_table} WHERE id IN "  # noqa: S608
                f"(SELECT endpoint_id FROM {Delivery._meta.db_table} WHERE {where}) ORDER BY id{lock}",
                params,
            )
            endpoints = {endpoint.id: endpoint for endpoint in _recipients(cursor.fetchall())}
        token = new_lease_token()
        owned = _claims_trade(claims, token, now)
        if not owned:
            return []
        events = {event.pk: event for event in Event.objects.filter(pk__in={event_id for _, event_id, _ in owned})}
        allowed = {
            event.pk: audience_filter(
                event.type,
                event.data,
                {endpoints[endpoint_id].account_id for _, event_id, endpoint_id in owned if event_id == event.pk},
            )
            for event in events.values()
        }
        outgoing: list[Outgoing] = []
        bodies: dict[int, str] = {}
        for delivery_id, event_id, endpoint_id in owned:
            endpoint, event = endpoints[endpoint_id], events[event_id]
            if not endpoint.enabled:
                _delivery_close(delivery_id, token, DeliveryStatus.FAILED, "Endpoint disabled.")
                continue
            if endpoint.account_id not in allowed[event_id]:
                _delivery_close(
                    delivery_id, token, DeliveryStatus.CANCELLED, "The recipient may no longer see this event."
                )
                continue
            if event_id not in bodies:
                bodies[event_id] = envelope_body(event)
            outgoing.append(_outgoing(delivery_id, endpoint, event, token, body=bodies[event_id]))
        return outgoing


def _claims_trade(claims: list[Claim], token: str, now: datetime) -> list[tuple[int, int, int]]:
    """Trade the claims still held for ``token``, marked on the wire until the attempt's deadline;
    return (delivery id, event id, endpoint id) of each, in delivery id order."""
    values = {
        "lease_token": token,
        "lease_expires_at": now + timedelta(seconds=_lease_seconds()),
        "sending_until": now + settings.WEBHOOKS_TIMEOUT + timedelta(seconds=1),
    }
    table = Delivery._meta.db_table
    owned: list[tuple[int, int, int]] = []
    for claim_token, ids in _by_token(claims).items():
        if not claim_token:
            continue
        where, params = _in("id", ids)
        with connection.cursor() as cursor:
            cursor.execute(
                # Only constant fragments are formatted in; the values go as parameters.
                f"UPDATE {table} SET lease_token = %s, lease_expires_at = %s, sending_until = %s "  # noqa: S608
                f"WHERE {where} AND status = %s AND lease_token = %s RETURNING id, event_id, endpoint_id",
                [*_prepped(Delivery, values), *params, DeliveryStatus.PENDING.value, claim_token],
            )
            owned += [tuple(row) for row in cursor.fetchall()]
    return sorted(owned)


def _prepped(model: type[models.Model], values: dict[str, Any]) -> list[Any]:
    prepped = []
    for name, value in values.items():
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field)
        prepped.append(field.get_db_prep_save(value, connection))
    return prepped


def _outgoing(delivery_id: int, endpoint: _Recipient, event: Event, token: str, *, body: str) -> Outgoing:
    signed_at = timezone.now()
    signatures = [
        Webhook(secret).sign(event.public_id, signed_at, body)
        for secret in endpoint_signing_secrets(endpoint, now=signed_at)
    ]
    return Outgoing(
        delivery_id=delivery_id,
        endpoint_id=endpoint.id,
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


def delivery_attempt(*, delivery_id: int, lease_token: str) -> bool:
    """Make one attempt at a delivery this caller claimed, log it, and schedule what comes next.

    Returns False without sending when the claim is no longer the caller's (another
    worker took it after the lease ran out) or the delivery is done.
    """
    started = deliveries_start(claims=[(delivery_id, lease_token)])
    if not started:
        return False
    return attempts_record(results=[(started[0], outgoing_post(started[0]))]) > 0


def _delivery_close(delivery_id: int, lease_token: str, status: str, reason: str) -> None:
    Delivery.objects.filter(pk=delivery_id, lease_token=lease_token, status=DeliveryStatus.PENDING).update(
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


def attempts_record(*, results: Iterable[tuple[Outgoing, http.PostResult]]) -> int:
    """Log attempts and schedule what comes next for each delivery, in one transaction for all of them;
    returns how many attempts were logged.

    A delivery whose endpoint was deleted meanwhile is skipped; a claim lost
    meanwhile (redelivery, endpoint disabled) keeps the attempt on record only.
    Then each endpoint's health: a success ends its failure streak, a 410 or
    failing for WEBHOOKS_DISABLE_AFTER disables it.
    """
    results = list(results)
    if not results:
        return 0
    logged, failing = _attempts_log(results)
    # After the deliveries' transaction: endpoint rows are only ever locked before delivery
    # rows (share locks at start and record, endpoint_disable), never after, so no deadlock.
    healthy: set[int] = set()
    for outgoing, result in results:
        if outgoing.delivery_id not in logged:
            continue
        code = result.status_code
        if code is not None and 200 <= code < 300:
            if outgoing.endpoint_id in failing:
                healthy.add(outgoing.endpoint_id)
        else:
            _endpoint_health(outgoing.endpoint_id, code, _error(result), outgoing.signed_at)
    if healthy:
        Endpoint.objects.filter(pk__in=healthy, failing_since__isnull=False).update(failing_since=None)
    return len(logged)


_DELIVERY_WRITTEN = (
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
)


@transaction.atomic
def _attempts_log(results: list[tuple[Outgoing, http.PostResult]]) -> tuple[set[int], set[int]]:
    """Returns the deliveries whose attempt was logged, and the endpoints that were on a failure streak."""
    now = timezone.now()
    endpoints = _endpoints_lock_shared(endpoint_ids={outgoing.endpoint_id for outgoing, _ in results})
    ids = sorted(outgoing.delivery_id for outgoing, _ in results if outgoing.endpoint_id in endpoints)
    failing = {endpoint_id for endpoint_id, streak in endpoints.items() if streak}
    if not ids:
        return set(), failing
    where, params = _in("id", ids)
    lock = " FOR UPDATE" if _postgresql() else ""
    with connection.cursor() as cursor:
        cursor.execute(
            # Only constant fragments are formatted in; the values go as parameters.
            f"SELECT id, {', '.join(_DELIVERY_WRITTEN)} FROM {Delivery._meta.db_table} "  # noqa: S608
            f"WHERE {where} ORDER BY id{lock}",
            params,
        )
        deliveries = {row[0]: dict(zip(("id", *_DELIVERY_WRITTEN), row, strict=True)) for row in cursor.fetchall()}
    attempts: list[dict[str, Any]] = []
    changed: dict[int, dict[str, Any]] = {}
    for outgoing, result in results:
        delivery = deliveries.get(outgoing.delivery_id)
        if delivery is None:
            continue  # the endpoint was deleted while the request was in flight
        code = result.status_code
        succeeded = code is not None and 200 <= code < 300
        error = _error(result)[:500]
        delivery["attempt_count"] += 1
        attempts.append(
            {
                "delivery_id": outgoing.delivery_id,
                "number": delivery["attempt_count"],
                "started_at": outgoing.signed_at,
                "duration_ms": result.duration_ms,
                "status_code": code,
                "error": error,
                "response_body": _response_text(result.body),
                "url": outgoing.url,
            }
        )
        delivery.update(last_attempt_at=outgoing.signed_at, last_status_code=code, last_error=error)
        if delivery["lease_token"] in (outgoing.lease_token, ""):
            delivery["sending_until"] = None  # off the wire (a disabled endpoint's claims were cleared meanwhile)
        if delivery["status"] == DeliveryStatus.PENDING and delivery["lease_token"] == outgoing.lease_token:
            delivery.update(lease_token="", lease_expires_at=None)
            if succeeded:
                delivery.update(status=DeliveryStatus.SUCCEEDED.value, next_attempt_at=None, completed_at=now)
            else:
                delivery["round_attempts"] += 1
                if code == 410 or delivery["round_attempts"] > len(settings.WEBHOOKS_RETRY_SCHEDULE):
                    delivery.update(status=DeliveryStatus.FAILED.value, next_attempt_at=None, completed_at=now)
                else:
                    delay = retry_delay(
                        round_attempts=delivery["round_attempts"],
                        status_code=code,
                        retry_after=result.headers.get("retry-after"),
                        now=now,
                    )
                    delivery["next_attempt_at"] = now + timedelta(seconds=delay)
        changed[outgoing.delivery_id] = delivery
    if not changed:
        return set(), failing
    _deliveries_update_and_log(list(changed.values()), attempts)
    return set(changed), failing


def _deliveries_update_and_log(deliveries: list[dict[str, Any]], attempts: list[dict[str, Any]]) -> None:
    """Write the deliveries' new state and insert their attempts.

    On PostgreSQL one statement: an ``UPDATE ... FROM unnest(...)`` and an ``INSERT ... SELECT
    FROM unnest(...)`` with one array parameter per column. Django's ``bulk_update`` builds a
    ``CASE WHEN`` per field and row, and ``bulk_create`` a model instance and a placeholder per
    field and row, whose construction (and the driver's parsing of the placeholders) cost the
    worker more CPU than the database spends on them.
    """
    if not _postgresql():
        Delivery.objects.bulk_update(
            [Delivery(**{"pk": row["id"], **{name: row[name] for name in _DELIVERY_WRITTEN}}) for row in deliveries],
            list(_DELIVERY_WRITTEN),
        )
        DeliveryAttempt.objects.bulk_create([DeliveryAttempt(**row) for row in attempts])
        return
    delivery_columns = _columns(Delivery, ("id", *_DELIVERY_WRITTEN))
    attempt_columns = _columns(DeliveryAttempt, tuple(attempts[0]))

    def unnest(columns: list[tuple[str, str]]) -> str:
        return "unnest(" + ", ".join(f"%s::{cast}[]" for _, cast in columns) + ")"

    def names(columns: list[tuple[str, str]]) -> str:
        return ", ".join(f'"{column}"' for column, _ in columns)

    assignments = ", ".join(f'"{column}" = v."{column}"' for column, _ in delivery_columns[1:])
    sql = (
        f"WITH v AS (SELECT * FROM {unnest(delivery_columns)} AS v({names(delivery_columns)})), "  # noqa: S608
        f'u AS (UPDATE "{Delivery._meta.db_table}" AS d SET {assignments} FROM v WHERE d."id" = v."id") '
        f'INSERT INTO "{DeliveryAttempt._meta.db_table}" ({names(attempt_columns)}) '
        f"SELECT * FROM {unnest(attempt_columns)}"
    )
    params = [[row[name] for row in deliveries] for name in ("id", *_DELIVERY_WRITTEN)]
    params += [[row[name] for row in attempts] for name in attempts[0]]
    with connection.cursor() as cursor:
        # Only column names and types from the models are formatted in; the values go as parameters.
        cursor.execute(sql, params)


@functools.cache
def _columns(model: type[models.Model], names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(column, database type) of each named field, for the array parameters of one statement."""
    columns = []
    for name in names:
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field)
        cast = field.db_type(connection)
        assert cast is not None
        columns.append((field.column, cast.split("(")[0]))  # varchar(500)[] casts as varchar[]
    return columns


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
