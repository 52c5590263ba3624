"""Writes of the deals marketplace: deals, their items, and sellers' buyer authorisations.

Every rule a deal must satisfy is checked here (see docs/deals.md), so the API and
the admin share one implementation. Events go to the outbox, and an entry to the
audit log, in the same transaction as the write they describe.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from accounts.models import Account, Role
from core.actors import Actor, actor_fields
from core.audit import audit_log
from core.errors import Conflict, FieldError, NotFound, PreconditionFailed, ProblemError
from deals import selectors
from deals.currencies import CURRENCY_CODES, quantum
from deals.models import BuyerAuthorization, Deal, DealItem, DealStatus, DiscountType
from deals.wire import deal_etag, deal_wire
from webhooks.services import event_publish, recipients_fence, sends_settle

MAX_AMOUNT = Decimal("999999999999999")
MAX_ITEMS = 500
PERCENT_QUANTUM = Decimal("0.01")
# The wire fields a change can touch, in the order ``changes`` lists them.
CHANGE_FIELDS = ("name", "currency", "total_price", "discount", "final_price", "status", "items")


class DealInvalid(ProblemError):
    """One or more deal rules broken; ``errors`` maps each field path to its messages."""

    default_code = "validation_error"
    default_detail = "The deal is invalid."

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(f"Invalid input in: {', '.join(errors)}.", errors=errors)


class DealSold(Conflict):
    default_code = "deal_sold"
    default_detail = "A sold deal cannot change; set its status back to available first, on its own."


@dataclass(frozen=True)
class DealState:
    """A deal's editable content after validation."""

    name: str
    currency: str
    total_price: Decimal
    discount_type: str
    discount_amount: Decimal | None
    final_price: Decimal
    status: str
    items: tuple[tuple[str, str, Decimal], ...]


def final_price_compute(
    *, total: Decimal, discount_type: str, discount_amount: Decimal | None, currency: str
) -> Decimal:
    """Total less the discount; a percentage discount is rounded half-up to the currency's minor unit."""
    if not discount_type or discount_amount is None:
        return total
    if discount_type == DiscountType.FLAT:
        return total - discount_amount
    off = (total * discount_amount / 100).quantize(quantum(currency), rounding=ROUND_HALF_UP)
    return total - off


def _decimal(value: Decimal | int | str) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _amount_check(errors: dict[str, list[str]], field: str, value: Decimal, currency: str | None) -> None:
    if value < 0:
        errors.setdefault(field, []).append("Must not be negative.")
    elif value > MAX_AMOUNT:
        errors.setdefault(field, []).append(f"Must be at most {MAX_AMOUNT}.")
    elif currency is not None and value != value.quantize(quantum(currency)):
        places = -quantum(currency).as_tuple().exponent  # type: ignore[operator]
        errors.setdefault(field, []).append(f"{currency} amounts have at most {places} decimal place(s).")


def deal_state_validate(
    *,
    name: str,
    currency: str,
    items: Sequence[Mapping[str, Any]],
    total_price: Decimal | int | str | None,
    discount: Mapping[str, Any] | None,
    status: str,
) -> DealState:
    """Check every deal rule at once and return the normalised state, or raise 400 naming each field.

    Prices are not negative and have at most the currency's minor-unit decimals; at least one item;
    item ids unique; total_price equals the items' sum (computed when omitted); a percentage discount
    is in (0, 100] with at most 2 decimals; a flat discount is positive and at most the total.
    """
    errors: dict[str, list[str]] = {}
    name = name.strip()
    if not name:
        errors["name"] = ["Must not be blank."]
    code = currency.strip().upper()
    known_currency: str | None = code if code in CURRENCY_CODES else None
    if known_currency is None:
        errors["currency"] = [f"'{currency}' is not an active ISO 4217 currency code."]
    if status not in DealStatus.values:
        errors["status"] = [f"Must be one of: {', '.join(DealStatus.values)}."]

    if not items:
        errors["items"] = ["A deal has at least one item."]
    elif len(items) > MAX_ITEMS:
        errors["items"] = [f"A deal has at most {MAX_ITEMS} items."]
    seen: set[str] = set()
    normalised: list[tuple[str, str, Decimal]] = []
    for index, item in enumerate(items):
        ref, item_name, price = str(item["id"]).strip(), str(item["name"]).strip(), _decimal(item["price"])
        if not ref:
            errors[f"items.{index}.id"] = ["Must not be blank."]
        elif ref in seen:
            errors[f"items.{index}.id"] = [f"Item id '{ref}' appears more than once; item ids are unique in a deal."]
        seen.add(ref)
        if not item_name:
            errors[f"items.{index}.name"] = ["Must not be blank."]
        _amount_check(errors, f"items.{index}.price", price, known_currency)
        normalised.append((ref, item_name, price))

    items_sum = sum((price for _, _, price in normalised), Decimal(0))
    if total_price is None:
        total = items_sum
        if total > MAX_AMOUNT:
            errors.setdefault("items", []).append(f"The items' sum must be at most {MAX_AMOUNT}.")
    else:
        total = _decimal(total_price)
        before = len(errors.get("total_price", []))
        _amount_check(errors, "total_price", total, known_currency)
        item_errors = any(key.startswith("items.") for key in errors)
        if len(errors.get("total_price", [])) == before and not item_errors and total != items_sum:
            errors["total_price"] = [f"Must equal the sum of the items' prices ({items_sum}); omit it to compute it."]

    discount_type, discount_amount = "", None
    if discount is not None:
        discount_type, discount_amount = discount["type"], _decimal(discount["amount"])
        if discount_type not in DiscountType.values:
            errors["discount.type"] = [f"Must be one of: {', '.join(DiscountType.values)}."]
        elif discount_amount <= 0:
            errors["discount.amount"] = ["Must be greater than zero; send discount: null for no discount."]
        elif discount_type == DiscountType.PERCENTAGE:
            if discount_amount > 100:
                errors["discount.amount"] = ["A percentage discount is at most 100."]
            elif discount_amount != discount_amount.quantize(PERCENT_QUANTUM):
                errors["discount.amount"] = ["A percentage has at most 2 decimal places."]
        else:
            before = len(errors.get("discount.amount", []))
            _amount_check(errors, "discount.amount", discount_amount, known_currency)
            if len(errors.get("discount.amount", [])) == before and discount_amount > total:
                errors["discount.amount"] = [f"A flat discount is at most the total price ({total})."]

    if errors or known_currency is None:
        raise DealInvalid(errors)
    return DealState(
        name=name,
        currency=known_currency,
        total_price=total,
        discount_type=discount_type,
        discount_amount=discount_amount,
        final_price=final_price_compute(
            total=total, discount_type=discount_type, discount_amount=discount_amount, currency=known_currency
        ),
        status=status,
        items=tuple(normalised),
    )


def _seller_check(*, seller: Account, seller_ref: str | None) -> None:
    if seller.role != Role.SELLER:
        raise FieldError("seller", f"Account '{seller.ref}' is not a seller.")
    if seller_ref is not None and seller_ref != seller.ref:
        raise FieldError("seller", f"Must be your own ref ('{seller.ref}') or omitted.")


def _items_write(deal: Deal, state: DealState) -> None:
    DealItem.objects.bulk_create(
        [
            DealItem(deal=deal, position=position, ref=ref, name=name, price=price)
            for position, (ref, name, price) in enumerate(state.items)
        ]
    )


def _apply(deal: Deal, state: DealState) -> None:
    deal.name = state.name
    deal.currency = state.currency
    deal.total_price = state.total_price
    deal.discount_type = state.discount_type
    deal.discount_amount = state.discount_amount
    deal.final_price = state.final_price
    deal.status = state.status


@dataclass(frozen=True)
class DealWritten:
    """A deal after a write, with its wire form (what the API answers) and whether anything changed."""

    deal: Deal
    wire: dict[str, Any]
    changed: bool = True


@transaction.atomic
def deal_create(
    *,
    seller: Account,
    name: str,
    currency: str,
    items: Sequence[Mapping[str, Any]],
    total_price: Decimal | int | str | None = None,
    discount: Mapping[str, Any] | None = None,
    status: str = DealStatus.AVAILABLE,
    seller_ref: str | None = None,
    actor: Actor,
) -> DealWritten:
    """Post a deal for ``seller`` (``seller_ref``, when given, must be the seller's own) and tell
    every buyer the seller has authorised with ``deal.created``."""
    _seller_check(seller=seller, seller_ref=seller_ref)
    state = deal_state_validate(
        name=name, currency=currency, items=items, total_price=total_price, discount=discount, status=status
    )
    now = timezone.now()
    deal = Deal(seller=seller, created_at=now, updated_at=now)
    _apply(deal, state)
    deal.save()
    _items_write(deal, state)
    wire = deal_wire(deal, items=state.items)
    audit_log(obj=deal, action="created", actor=actor, message=_deal_text(wire), at=now)
    event_publish(event_type="deal.created", data=wire, recipients=selectors.authorized_buyer_ids(seller=seller))
    return DealWritten(deal=deal, wire=wire)


def _deal_text(wire: Mapping[str, Any]) -> str:
    return (
        f"{wire['name']!r}: {len(wire['items'])} item(s), {wire['final_price']} {wire['currency']}, {wire['status']}."
    )


def _changes_text(diff: Mapping[str, list[Any]], version: int) -> str:
    parts = []
    for field, (old, new) in diff.items():
        if field == "items":
            parts.append(f"items replaced ({len(old)} -> {len(new)})")
        elif field == "discount":
            parts.append(f"discount {_discount_text(old)} -> {_discount_text(new)}")
        else:
            parts.append(f"{field} {old!r} -> {new!r}" if field == "name" else f"{field} {old} -> {new}")
    return f"Version {version}: " + "; ".join(parts) + "."


def _discount_text(discount: Mapping[str, str] | None) -> str:
    if discount is None:
        return "none"
    return f"{discount['amount']}%" if discount["type"] == DiscountType.PERCENTAGE else f"{discount['amount']} off"


_SAVED_FIELDS = ("name", "currency", "total_price", "discount_type", "discount_amount", "final_price", "status")


@functools.cache
def _deal_saved_fields() -> list[Field[Any, Any]]:
    by_name = {field.name: field for field in Deal._meta.concrete_fields}
    return [by_name[name] for name in (*_SAVED_FIELDS, "version", "updated_at")]


@functools.cache
def _deal_save_sql() -> str:
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in _deal_saved_fields())
    return f"UPDATE {quote(Deal._meta.db_table)} SET {assignments} WHERE {quote('id')} = %s"  # noqa: S608


def _deal_save(deal: Deal) -> None:
    """Write the deal's content, version and ``updated_at``: one fixed statement, no query building."""
    values = [field.get_db_prep_save(getattr(deal, field.attname), connection) for field in _deal_saved_fields()]
    with connection.cursor() as cursor:
        cursor.execute(_deal_save_sql(), [*values, deal.pk])


@transaction.atomic
def deal_update(
    *,
    seller: Account,
    deal_id: UUID,
    changes: Mapping[str, Any],
    expected_versions: Collection[int] | None = None,
    actor: Actor,
) -> DealWritten:
    """Change the seller's own deal under a row lock; ``changed`` says whether anything changed.

    ``changes`` holds any of name, currency, total_price, discount, status, items (replaced whole)
    and seller. ``expected_versions`` (from If-Match) must contain the current version, else 412.
    A sold deal only accepts ``status: available`` on its own (409 ``deal_sold``). A real change
    increments the version and publishes ``deal.updated`` with the changed fields; no change, no event.
    """
    locked = selectors.deal_lock_for_update(seller=seller, deal_id=deal_id)
    if locked is None:
        raise NotFound("No deal with this id among your deals.")
    deal, current_items = locked.deal, locked.items
    if expected_versions is not None and deal.version not in expected_versions:
        raise PreconditionFailed(
            f"The deal is at version {deal.version}; read it again and retry with its current ETag.",
            current_version=deal.version,
            etag=deal_etag(deal),
        )
    _seller_check(seller=seller, seller_ref=changes.get("seller"))
    before = deal_wire(deal, items=current_items)

    current_discount = {"type": deal.discount_type, "amount": deal.discount_amount} if deal.discount_type else None
    if "total_price" in changes:
        total_price = changes["total_price"]
    else:
        total_price = None if "items" in changes else deal.total_price
    state = deal_state_validate(
        name=changes.get("name", deal.name),
        currency=changes.get("currency", deal.currency),
        items=changes["items"]
        if "items" in changes
        else [{"id": ref, "name": name, "price": price} for ref, name, price in current_items],
        total_price=total_price,
        discount=changes.get("discount", current_discount),
        status=changes.get("status", deal.status),
    )

    was_sold = deal.status == DealStatus.SOLD
    _apply(deal, state)
    items_changed = current_items != list(state.items)
    after = deal_wire(deal, items=state.items)
    diff = {field: [before[field], after[field]] for field in CHANGE_FIELDS if before[field] != after[field]}
    if not diff:
        return DealWritten(deal=deal, wire=after, changed=False)
    if was_sold and set(diff) != {"status"}:
        raise DealSold(changed=sorted(diff))

    deal.version += 1
    deal.updated_at = timezone.now()
    _deal_save(deal)
    if items_changed:
        DealItem.objects.filter(deal=deal).delete()
        _items_write(deal, state)
    after = deal_wire(deal, items=state.items)
    audit_log(obj=deal, action="changed", actor=actor, message=_changes_text(diff, deal.version), at=deal.updated_at)
    event_publish(event_type="deal.updated", data={**after, "changes": diff}, recipients=locked.audience)
    return DealWritten(deal=deal, wire=after)


@transaction.atomic
def authorization_create(*, seller: Account, buyer: Account, actor: Actor) -> tuple[BuyerAuthorization, bool]:
    """Let ``buyer`` see ``seller``'s deals and receive their events; authorising twice is harmless.

    Audited on the seller's account, whose History keeps it after the authorisation is gone."""
    if seller.role != Role.SELLER:
        raise FieldError("seller", f"Account '{seller.ref}' is not a seller.")
    if buyer.role != Role.BUYER:
        raise FieldError("buyer", f"Account '{buyer.ref}' is not a buyer.")
    authorization, created = BuyerAuthorization.objects.get_or_create(
        seller=seller, buyer=buyer, defaults={"created_at": timezone.now(), **actor_fields(actor, "created_by")}
    )
    if created:
        audit_log(
            obj=seller,
            action="buyer authorised",
            actor=actor,
            message=f"{buyer.ref} sees {seller.ref}'s deals and receives their events.",
            at=authorization.created_at,
        )
    return authorization, created


NO_SUCH_BUYER = "No buyer account has this ref."


def authorization_create_by_ref(*, seller: Account, buyer_ref: str, actor: Actor) -> tuple[BuyerAuthorization, bool]:
    """Authorise the buyer whose ref is ``buyer_ref``. A ref that is unknown and one that
    belongs to another role get the same error, so a seller learns nothing about it."""
    buyer = Account.objects.filter(ref=buyer_ref, role=Role.BUYER).first()
    if buyer is None:
        raise FieldError("buyer", NO_SUCH_BUYER)
    return authorization_create(seller=seller, buyer=buyer, actor=actor)


def authorization_delete(*, seller: Account, buyer_ref: str, actor: Actor) -> None:
    """Take ``seller``'s authorisation away from the buyer: effective for reads and deliveries at once.

    When it returns, nothing more of the seller's reaches the buyer's webhooks: the buyer's
    endpoints are locked while the authorisation goes (an attempt checks the audience under
    that lock when it starts), then the attempts already on the wire are waited for.
    """
    with transaction.atomic():
        buyer_id = (
            BuyerAuthorization.objects.filter(seller=seller, buyer__ref=buyer_ref)
            .values_list("buyer_id", flat=True)
            .first()
        )
        if buyer_id is None:
            raise NotFound(f"'{buyer_ref}' is not among your authorised buyers.")
        recipients_fence(account_ids=[buyer_id])
        BuyerAuthorization.objects.filter(seller=seller, buyer_id=buyer_id).delete()
        audit_log(
            obj=seller,
            action="buyer de-authorised",
            actor=actor,
            message=f"{buyer_ref} no longer sees {seller.ref}'s deals or receives their events.",
        )
    sends_settle(account_ids=[buyer_id])
