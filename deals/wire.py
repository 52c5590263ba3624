"""The deal's wire format: one function shared by API responses and event payloads."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from deals.currencies import quantum
from deals.models import Deal, DiscountType

PERCENT_QUANTUM = Decimal("0.01")


def money_str(amount: Decimal, currency: str) -> str:
    """``amount`` as a string with exactly the currency's minor-unit digits ("10.50" GBP, "1050" JPY)."""
    return str(amount.quantize(quantum(currency)))


def datetime_str(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def discount_wire(discount_type: str, amount: Decimal | None, currency: str) -> dict[str, str] | None:
    if not discount_type or amount is None:
        return None
    if discount_type == DiscountType.PERCENTAGE:
        return {"type": discount_type, "amount": str(amount.quantize(PERCENT_QUANTUM))}
    return {"type": discount_type, "amount": money_str(amount, currency)}


def items_wire(items: Iterable[tuple[str, str, Decimal]], currency: str) -> list[dict[str, str]]:
    return [{"id": ref, "name": name, "price": money_str(price, currency)} for ref, name, price in items]


def deal_wire(deal: Deal, *, items: Iterable[tuple[str, str, Decimal]] | None = None) -> dict[str, Any]:
    """The deal as every client sees it: the seed's shape plus id, final price, version and timestamps.

    ``items`` are ``(ref, name, price)`` in position order; without them, the deal's own are read
    (prefetch them for many deals). Expects ``seller`` loaded (select_related) or set.
    """
    currency = deal.currency
    if items is None:
        items = [(item.ref, item.name, item.price) for item in deal.items.all()]
    return {
        "id": str(deal.public_id),
        "name": deal.name,
        "seller": deal.seller.ref,
        "total_price": money_str(deal.total_price, currency),
        "currency": currency,
        "discount": discount_wire(deal.discount_type, deal.discount_amount, currency),
        "final_price": money_str(deal.final_price, currency),
        "status": deal.status,
        "items": items_wire(items, currency),
        "version": deal.version,
        "created_at": datetime_str(deal.created_at),
        "updated_at": datetime_str(deal.updated_at),
    }


DEAL_ROW_FIELDS = (
    "id",
    "public_id",
    "name",
    "seller__ref",
    "total_price",
    "currency",
    "discount_type",
    "discount_amount",
    "final_price",
    "status",
    "version",
    "created_at",
    "updated_at",
)


def deal_wire_rows(
    rows: list[dict[str, Any]], items: dict[int, list[tuple[str, str, Decimal]]]
) -> list[dict[str, Any]]:
    """:func:`deal_wire` of plain rows (``DEAL_ROW_FIELDS``) and their items (``ref, name, price``
    by deal id, in position order): the same dicts, without a model instance per row."""
    out = []
    for row in rows:
        currency = row["currency"]
        out.append(
            {
                "id": str(row["public_id"]),
                "name": row["name"],
                "seller": row["seller__ref"],
                "total_price": money_str(row["total_price"], currency),
                "currency": currency,
                "discount": discount_wire(row["discount_type"], row["discount_amount"], currency),
                "final_price": money_str(row["final_price"], currency),
                "status": row["status"],
                "items": [
                    {"id": ref, "name": name, "price": money_str(price, currency)}
                    for ref, name, price in items.get(row["id"], ())
                ],
                "version": row["version"],
                "created_at": datetime_str(row["created_at"]),
                "updated_at": datetime_str(row["updated_at"]),
            }
        )
    return out


def deal_etag(deal: Deal) -> str:
    """Strong ETag: changes exactly when the version does."""
    return f'"{deal.public_id}.{deal.version}"'


def deal_row_etag(row: dict[str, Any]) -> str:
    """:func:`deal_etag` of a plain row."""
    return f'"{row["public_id"]}.{row["version"]}"'
