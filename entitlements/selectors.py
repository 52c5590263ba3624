from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import Account
from catalog.models import Dataset
from core.db import cursor_or_default
from core.errors import NotFound, ProblemError
from entitlements.models import AccessRequest, AccessRequestItem, Grant, GrantChange, GrantStatus, RequestStatus


def grants_in_force(*, at: datetime | None = None) -> QuerySet[Grant]:
    """Grants that give access right now: active and not past ``expires_at``, whatever the workers did."""
    now = at or timezone.now()
    return Grant.objects.filter(status=GrantStatus.ACTIVE, starts_at__lte=now).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def grant_in_force(*, account_id: int, dataset_id: int, frequency: str | None = None) -> Grant | None:
    """The grant that lets ``account`` read ``dataset`` (at ``frequency``, or at any frequency).

    Every price and market-cap read asks this: on PostgreSQL it is one fixed statement, the
    same rows as :func:`grants_in_force`, without building the query each time."""
    if connection.vendor != "postgresql":
        qs = grants_in_force().filter(account_id=account_id, dataset_id=dataset_id)
        if frequency is not None:
            qs = qs.filter(frequency=frequency)
        return qs.first()
    now = timezone.now()
    params: list[Any] = [account_id, dataset_id, GrantStatus.ACTIVE.value, now, now]
    sql = _GRANT_IN_FORCE_SQL
    if frequency is not None:
        sql, params = sql + " AND frequency = %s", [*params, frequency]
    return next(iter(Grant.objects.raw(sql + " ORDER BY id LIMIT 1", params)), None)


_GRANT_IN_FORCE_SQL = (
    f'SELECT * FROM "{Grant._meta.db_table}" WHERE account_id = %s AND dataset_id = %s AND status = %s '  # noqa: S608
    "AND starts_at <= %s AND (expires_at IS NULL OR expires_at > %s)"
)


class NotEntitled(ProblemError):
    status_code = 403
    default_code = "not_entitled"
    default_detail = "You have no active access to this dataset at this frequency."


def grant_require(*, account: Account, dataset: Dataset, frequency: str | None = None) -> Grant:
    """The grant in force for ``account`` on ``dataset`` (at ``frequency``), else 403 ``not_entitled``.

    The error names what is missing and the request to send to ask for it.
    """
    grant = grant_in_force(account_id=account.pk, dataset_id=dataset.pk, frequency=frequency)
    if grant is not None:
        return grant
    frequencies = [frequency] if frequency else [f.frequency for f in dataset.frequencies.all()]
    what = f"{dataset.symbol} at {frequency}" if frequency else f"any frequency of {dataset.symbol}"
    raise NotEntitled(
        f"You have no active access to {what}. Request it with POST /api/v1/access-requests.",
        dataset=dataset.symbol,
        frequency=frequency,
        how_to_request={
            "method": "POST",
            "url": "/api/v1/access-requests",
            "body": {"dataset": dataset.symbol, "frequencies": frequencies, "reason": "..."},
        },
    )


def grant_effective_status(grant: Grant, *, at: datetime | None = None) -> str:
    """``active`` only while in force: an active grant past ``expires_at`` reads as ``expired`` at once."""
    now = at or timezone.now()
    if grant.status == GrantStatus.ACTIVE and grant.expires_at is not None and grant.expires_at <= now:
        return GrantStatus.EXPIRED
    return grant.status


def grants_with_status(queryset: QuerySet[Grant], *, status: str, at: datetime | None = None) -> QuerySet[Grant]:
    """Narrow ``queryset`` to grants whose effective status (see ``grant_effective_status``) is ``status``."""
    now = at or timezone.now()
    in_force = Q(status=GrantStatus.ACTIVE) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    if status == GrantStatus.ACTIVE:
        return queryset.filter(in_force)
    if status == GrantStatus.EXPIRED:
        return queryset.filter(Q(status=GrantStatus.EXPIRED) | Q(status=GrantStatus.ACTIVE, expires_at__lte=now))
    return queryset.filter(status=status)


def grant_list() -> QuerySet[Grant]:
    return Grant.objects.select_related(
        "account", "dataset", "item", "created_by_user", "created_by_account", "revoked_by_user", "revoked_by_account"
    )


def grant_get(*, grant_id: int) -> Grant:
    grant = (
        grant_list()
        .prefetch_related(
            Prefetch("changes", queryset=GrantChange.objects.select_related("actor_user", "actor_account"))
        )
        .filter(pk=grant_id)
        .first()
    )
    if grant is None:
        raise NotFound(f"No grant #{grant_id}.")
    return grant


ENTITLEMENT_ROW_FIELDS = ("id", "dataset__symbol", "frequency", "starts_at", "expires_at", "item__request_id")


def account_entitlement_rows(*, account: Account) -> QuerySet[Grant, dict[str, Any]]:
    """The grants ``account`` may read right now, as plain rows (``ENTITLEMENT_ROW_FIELDS``), for the list."""
    return grants_in_force().filter(account=account).values(*ENTITLEMENT_ROW_FIELDS)


class AccountEntitlementRowsNewestFirst:
    """:func:`account_entitlement_rows` newest first, as cursor pagination reads a first page
    (``order_by("-id")`` then a slice): one fixed statement on PostgreSQL, no query building."""

    def __init__(self, *, account: Account) -> None:
        self.account_id = account.pk

    def order_by(self, *fields: str) -> AccountEntitlementRowsNewestFirst:
        if fields != ("-id",):
            raise ValueError(f"only newest first, not {fields}")
        return self

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        start = window.start or 0
        return entitlement_rows_newest_first(account_id=self.account_id, limit=window.stop - start, offset=start)


def entitlement_rows_newest_first(
    *, account_id: int, limit: int, offset: int = 0, cursor: Any | None = None
) -> list[dict[str, Any]]:
    """Rows of :func:`account_entitlement_rows` newest first, from one fixed statement
    (PostgreSQL), on ``cursor`` if given."""
    now = timezone.now()
    with cursor_or_default(cursor) as cursor:
        cursor.execute(_ENTITLEMENT_ROWS_SQL, [account_id, GrantStatus.ACTIVE.value, now, now, limit, offset])
        return [dict(zip(ENTITLEMENT_ROW_FIELDS, row, strict=True)) for row in cursor.fetchall()]


_ENTITLEMENT_ROWS_SQL = (
    "SELECT g.id, d.symbol, g.frequency, g.starts_at, g.expires_at, i.request_id "  # noqa: S608
    f'FROM "{Grant._meta.db_table}" g JOIN "{Dataset._meta.db_table}" d ON d.id = g.dataset_id '
    f'LEFT JOIN "{AccessRequestItem._meta.db_table}" i ON i.id = g.item_id '
    "WHERE g.account_id = %s AND g.status = %s AND g.starts_at <= %s AND (g.expires_at IS NULL OR g.expires_at > %s) "
    "ORDER BY g.id DESC LIMIT %s OFFSET %s"
)


def access_request_list(*, account: Account | None = None) -> QuerySet[AccessRequest]:
    """Requests with their items (and each approved item's grant) loaded in a fixed number of queries."""
    items = AccessRequestItem.objects.select_related("decided_by_user", "decided_by_account").prefetch_related(
        Prefetch("grants", queryset=Grant.objects.order_by("created_at", "id"))
    )
    qs = AccessRequest.objects.select_related("account", "dataset").prefetch_related(Prefetch("items", queryset=items))
    if account is not None:
        qs = qs.filter(account=account)
    return qs


def access_request_get(*, request_id: int, account: Account | None = None) -> AccessRequest:
    """One request; with ``account``, only that account's own (another's is 404, not 403)."""
    request = access_request_list(account=account).filter(pk=request_id).first()
    if request is None:
        raise NotFound(f"No access request #{request_id}.")
    return request


def access_requests_pending() -> QuerySet[AccessRequest]:
    """The Ops queue: requests with an item still pending, oldest first."""
    return (
        AccessRequest.objects.filter(status=RequestStatus.PENDING)
        .select_related("account", "dataset")
        .order_by("created_at", "id")
    )
