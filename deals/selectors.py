"""Reads of the deals marketplace: who may see which deal, and who is authorised by whom."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import QuerySet

from accounts.models import Account, Role
from core.db import cursor_or_default
from core.errors import NotFound
from deals.models import BuyerAuthorization, Deal, DealItem


def deal_rows_visible(*, account: Account) -> QuerySet[Deal, dict[str, Any]]:
    """The deals ``account`` may see, as plain rows (``deals.wire.DEAL_ROW_FIELDS``), for lists: a
    seller's own deals; a buyer's authorising sellers' deals; nothing for anyone else."""
    from deals.wire import DEAL_ROW_FIELDS

    deals = Deal.objects.values(*DEAL_ROW_FIELDS)
    if account.role == Role.SELLER:
        return deals.filter(seller=account)
    if account.role == Role.BUYER:
        return deals.filter(seller_id__in=BuyerAuthorization.objects.filter(buyer=account).values("seller_id"))
    return deals.none()


def deal_items_by_deal(
    *, deal_ids: Collection[int], cursor: Any | None = None
) -> dict[int, list[tuple[str, str, Decimal]]]:
    """The items of these deals, ``(ref, name, price)`` in position order, by deal id: one query,
    the ids sent as one array parameter (on ``cursor`` if given)."""
    items: dict[int, list[tuple[str, str, Decimal]]] = {}
    if not deal_ids:
        return items
    table = DealItem._meta.db_table
    if connection.vendor == "postgresql":
        sql = f'SELECT deal_id, ref, name, price FROM "{table}" WHERE deal_id = ANY(%s) ORDER BY deal_id, position'  # noqa: S608
        with cursor_or_default(cursor) as cursor:
            cursor.execute(sql, [list(deal_ids)])
            rows = cursor.fetchall()
    else:
        rows = list(
            DealItem.objects.filter(deal_id__in=list(deal_ids))
            .order_by("deal_id", "position")
            .values_list("deal_id", "ref", "name", "price")
        )
    for deal_id, ref, name, price in rows:
        items.setdefault(deal_id, []).append((ref, name, price))
    return items


_DEAL_ROW_VISIBLE_TO = {
    Role.SELLER: "d.seller_id = %s",
    Role.BUYER: "d.seller_id IN (SELECT seller_id FROM {authorizations} WHERE buyer_id = %s)",
}


@functools.cache
def _deal_rows_sql(role: str) -> str | None:
    """SELECT the plain rows of the deals ``role`` may see (parameter: the account's id)."""
    from deals.wire import DEAL_ROW_FIELDS

    visible = _DEAL_ROW_VISIBLE_TO.get(role)  # type: ignore[call-overload]
    if visible is None:
        return None
    columns = ", ".join("a.ref" if field == "seller__ref" else f"d.{field}" for field in DEAL_ROW_FIELDS)
    return (
        f'SELECT {columns} FROM "{Deal._meta.db_table}" d JOIN "{Account._meta.db_table}" a ON a.id = d.seller_id '  # noqa: S608
        f"WHERE " + visible.format(authorizations=f'"{BuyerAuthorization._meta.db_table}"')
    )


def deal_rows_newest_first(*, account: Account, limit: int, cursor: Any | None = None) -> list[dict[str, Any]]:
    """The first ``limit`` rows of :func:`deal_rows_visible` in the list's default order (newest
    update first, ties by id): on PostgreSQL one fixed statement, no query building (on
    ``cursor`` if given)."""
    from deals.wire import DEAL_ROW_FIELDS

    if connection.vendor != "postgresql":
        return list(deal_rows_visible(account=account).order_by("-updated_at", "-id")[:limit])
    sql = _deal_rows_sql(account.role)
    if sql is None:
        return []
    with cursor_or_default(cursor) as cursor:
        cursor.execute(sql + " ORDER BY d.updated_at DESC, d.id DESC LIMIT %s", [account.pk, limit])
        return [dict(zip(DEAL_ROW_FIELDS, row, strict=True)) for row in cursor.fetchall()]


def deal_row_get_visible(*, account: Account, deal_id: UUID, cursor: Any | None = None) -> dict[str, Any]:
    """The deal if ``account`` may see it, else 404 (never 403: others' deals do not exist for
    you), as a plain row (``deals.wire.DEAL_ROW_FIELDS``), for reads.

    On PostgreSQL one fixed statement (no query building per request); the same rows as
    :func:`deal_rows_visible`."""
    from deals.wire import DEAL_ROW_FIELDS

    if connection.vendor != "postgresql":
        row = deal_rows_visible(account=account).filter(public_id=deal_id).first()
    elif (sql := _deal_rows_sql(account.role)) is None:
        row = None
    else:
        with cursor_or_default(cursor) as cursor:
            cursor.execute(sql + " AND d.public_id = %s", [account.pk, deal_id])
            found = cursor.fetchone()
        row = dict(zip(DEAL_ROW_FIELDS, found, strict=True)) if found else None
    if row is None:
        raise NotFound("No deal with this id is visible to you.")
    return row


def _audience_sql(seller_id: str) -> str:
    return (
        f'SELECT b.buyer_id FROM "{BuyerAuthorization._meta.db_table}" b '  # noqa: S608
        f'JOIN "{Account._meta.db_table}" a ON a.id = b.buyer_id WHERE b.seller_id = {seller_id} AND a.is_active'
    )


def authorized_buyer_ids(*, seller: Account) -> list[int]:
    """Active buyers ``seller`` has authorised: the audience of its deal events."""
    if connection.vendor != "postgresql":
        return list(
            BuyerAuthorization.objects.filter(seller=seller, buyer__is_active=True).values_list("buyer_id", flat=True)
        )
    with connection.cursor() as cursor:
        cursor.execute(_audience_sql("%s"), [seller.pk])
        return [buyer_id for (buyer_id,) in cursor.fetchall()]


@dataclass(frozen=True)
class DealLocked:
    """A deal under its row lock, with its items ``(ref, name, price)`` in position order and the
    audience of its events (:func:`authorized_buyer_ids`)."""

    deal: Deal
    items: list[tuple[str, str, Decimal]]
    audience: list[int]


_DEAL_FIELDS = [field.attname for field in Deal._meta.concrete_fields]


@functools.cache
def _deal_lock_sql() -> str:
    columns = ", ".join(f"d.{field.column}" for field in Deal._meta.concrete_fields)
    items = DealItem._meta.db_table
    arrays = ", ".join(
        f'ARRAY(SELECT i.{column} FROM "{items}" i WHERE i.deal_id = d.id ORDER BY i.position)'  # noqa: S608
        for column in ("ref", "name", "price")
    )
    return (
        f"SELECT {columns}, {arrays}, ARRAY({_audience_sql('d.seller_id')}) "  # noqa: S608
        f'FROM "{Deal._meta.db_table}" d WHERE d.public_id = %s AND d.seller_id = %s FOR UPDATE'
    )


def deal_lock_for_update(*, seller: Account, deal_id: UUID) -> DealLocked | None:
    """``seller``'s deal ``deal_id`` locked until the transaction ends (None if it has no such deal).

    On PostgreSQL one fixed statement reads the deal, its items and its audience."""
    if connection.vendor != "postgresql":
        deal = Deal.objects.select_for_update().filter(public_id=deal_id, seller=seller).first()
        if deal is None:
            return None
        items = list(deal.items.order_by("position").values_list("ref", "name", "price"))
        audience = authorized_buyer_ids(seller=seller)
    else:
        with connection.cursor() as cursor:
            cursor.execute(_deal_lock_sql(), [deal_id, seller.pk])
            row = cursor.fetchone()
        if row is None:
            return None
        count = len(_DEAL_FIELDS)
        deal = Deal.from_db(connection.alias, _DEAL_FIELDS, row[:count])
        refs, names, prices, audience = row[count:]
        items = list(zip(refs, names, prices, strict=True))
    deal.seller = seller
    return DealLocked(deal=deal, items=items, audience=list(audience))


def authorization_list_for_seller(*, seller: Account) -> QuerySet[BuyerAuthorization]:
    return BuyerAuthorization.objects.filter(seller=seller).select_related("buyer")


def authorization_list_for_buyer(*, buyer: Account) -> QuerySet[BuyerAuthorization]:
    return BuyerAuthorization.objects.filter(buyer=buyer).select_related("seller")


def deal_event_audience_check(event_type: str, data: dict[str, Any], account_ids: Collection[int]) -> set[int]:
    """Which of ``account_ids`` may still receive this deal event? Those the deal's seller authorises.

    Consulted by webhook fan-out, delivery and the events feed at send time, so a buyer the
    seller de-authorised stops receiving at once, retries already queued included.
    """
    seller_ref = data.get("seller")
    if not isinstance(seller_ref, str) or not account_ids:
        return set()
    if connection.vendor != "postgresql":
        return set(
            BuyerAuthorization.objects.filter(seller__ref=seller_ref, buyer_id__in=list(account_ids)).values_list(
                "buyer_id", flat=True
            )
        )
    with connection.cursor() as cursor:  # every delivery asks: one fixed statement, the ids as one array
        cursor.execute(_AUDIENCE_SQL, [seller_ref, list(account_ids)])
        return {buyer_id for (buyer_id,) in cursor.fetchall()}


_AUDIENCE_SQL = (
    f'SELECT z.buyer_id FROM "{BuyerAuthorization._meta.db_table}" z '  # noqa: S608
    f'JOIN "{Account._meta.db_table}" s ON s.id = z.seller_id WHERE s.ref = %s AND z.buyer_id = ANY(%s)'
)
