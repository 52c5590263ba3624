from decimal import Decimal, InvalidOperation
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deals.models import DealStatus, DiscountType
from deals.services import MAX_ITEMS

MAX_MAGNITUDE = 30


@extend_schema_field({"type": "string", "format": "decimal", "example": "100.00"})
class MoneyField(serializers.Field):
    """An exact decimal amount, a string in the schema (a JSON number is accepted too); never converted through float."""

    default_error_messages = {
        "invalid": "A decimal number (as a JSON number or a string) is required.",
        "too_large": "Too large.",
        "too_precise": "Too many decimal places.",
    }

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, str | int | float | Decimal):
            self.fail("invalid")
        try:
            # A float only reaches here from a parser other than DecimalJSONParser; str() keeps its
            # shortest round-trip digits, which is the number the client wrote.
            value = Decimal(data.strip() if isinstance(data, str) else str(data))
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        # Refused before any arithmetic: a sum or a quantize of 1e999999999 overflows Decimal's context.
        if value and value.adjusted() > MAX_MAGNITUDE:
            self.fail("too_large")
        if value and value.as_tuple().exponent < -MAX_MAGNITUDE:  # type: ignore[operator]
            self.fail("too_precise")
        return value

    def to_representation(self, value: Any) -> str:
        return str(value)


class DealItemInputSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=64, help_text="The seller's own id for the item, unique in the deal.")
    name = serializers.CharField(max_length=200)
    price = MoneyField()


class DiscountInputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=DiscountType.choices)
    amount = MoneyField(help_text="Percent for `percentage` (0 < amount <= 100), money for `flat`.")


class DealInputSerializer(serializers.Serializer):
    """A deal as a seller writes it (POST whole; PATCH any subset, `items` replaced whole)."""

    name = serializers.CharField(max_length=200)
    seller = serializers.CharField(required=False, help_text="Your own ref, or omit it.")
    currency = serializers.CharField(max_length=8, help_text="ISO 4217 code, any case (stored upper case).")
    total_price = MoneyField(
        required=False, allow_null=True, help_text="Must equal the items' sum; omit or null to have it computed."
    )
    discount = DiscountInputSerializer(required=False, allow_null=True)
    # No default here: a default in the schema makes generated clients send it on every PATCH.
    status = serializers.ChoiceField(
        choices=DealStatus.choices, required=False, help_text="`available` when a new deal leaves it out."
    )
    items = DealItemInputSerializer(many=True, allow_empty=True, max_length=MAX_ITEMS)  # type: ignore[call-arg]


_TEXT_MAX_LENGTHS = {"name": 200, "seller": None, "currency": 8}
_ITEM_TEXT_MAX_LENGTHS = {"id": 64, "name": 200}
_MONEY = MoneyField()
_DISCOUNT_TYPES = frozenset(DiscountType.values)
_STATUSES = frozenset(DealStatus.values)


def _plain_text(value: Any, max_length: int | None) -> str | None:
    """What a ``CharField`` makes of a string it accepts (stripped, not blank, within its length,
    no NUL or lone surrogate); None for anything else."""
    if type(value) is not str:
        return None
    text = value.strip()
    if not text or (max_length is not None and len(text) > max_length) or "\x00" in text:
        return None
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return None
    return text


def _plain_money(value: Any) -> Decimal | None:
    try:
        return _MONEY.to_internal_value(value)
    except serializers.ValidationError:
        return None


def _plain_items(value: Any) -> list[dict[str, Any]] | None:
    if type(value) is not list or len(value) > MAX_ITEMS:
        return None
    items = []
    for item in value:
        if type(item) is not dict:
            return None
        ref = _plain_text(item.get("id"), _ITEM_TEXT_MAX_LENGTHS["id"])
        name = _plain_text(item.get("name"), _ITEM_TEXT_MAX_LENGTHS["name"])
        price = _plain_money(item.get("price"))
        if ref is None or name is None or price is None:
            return None
        items.append({"id": ref, "name": name, "price": price})
    return items


def _plain_deal_input(data: Any, *, partial: bool) -> dict[str, Any] | None:
    """:class:`DealInputSerializer`'s validated data for input every field of which it accepts as
    sent (complete nested objects included); None for anything else."""
    if type(data) is not dict:
        return None
    if not partial and not {"name", "currency", "items"} <= data.keys():
        return None
    validated: dict[str, Any] = {}
    for field, value in data.items():
        checked: Any
        if field in _TEXT_MAX_LENGTHS:
            checked = _plain_text(value, _TEXT_MAX_LENGTHS[field])
        elif field == "total_price":
            if value is None:
                validated[field] = None
                continue
            checked = _plain_money(value)
        elif field == "discount":
            if value is None:
                validated[field] = None
                continue
            if type(value) is not dict or type(value.get("type")) is not str or value["type"] not in _DISCOUNT_TYPES:
                return None
            amount = _plain_money(value.get("amount"))
            checked = None if amount is None else {"type": value["type"], "amount": amount}
        elif field == "status":
            checked = value if type(value) is str and value in _STATUSES else None
        elif field == "items":
            checked = _plain_items(value)
        else:  # not a field: ignored, as the serializer ignores it
            continue
        if checked is None:
            return None
        validated[field] = checked
    return validated


def deal_input_validate(data: Any, *, partial: bool = False) -> dict[str, Any]:
    """:class:`DealInputSerializer`'s validated data, or its 400. Plainly valid input, what clients send
    nearly always, is taken without building the serializer; anything else goes through it, so its
    errors are the serializer's own."""
    validated = _plain_deal_input(data, partial=partial)
    if validated is not None:
        return validated
    serializer = DealInputSerializer(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class DealItemOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=19, decimal_places=4)


class DiscountOutputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=DiscountType.choices)
    amount = serializers.DecimalField(max_digits=19, decimal_places=4)


class DealOutputSerializer(serializers.Serializer):
    """The wire format (``deals.wire.deal_wire``), described for the schema."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    seller = serializers.CharField(help_text="The seller's ref.")
    total_price = serializers.DecimalField(max_digits=19, decimal_places=4)
    currency = serializers.CharField()
    discount = DiscountOutputSerializer(allow_null=True)
    final_price = serializers.DecimalField(
        max_digits=19, decimal_places=4, help_text="Total less the discount, in the currency's minor unit."
    )
    status = serializers.ChoiceField(choices=DealStatus.choices)
    items = DealItemOutputSerializer(many=True)
    version = serializers.IntegerField(help_text="Grows by one on every change; the ETag follows it.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        from deals.wire import deal_wire

        return deal_wire(instance)


class PreconditionFailedSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    current_version = serializers.IntegerField()
    etag = serializers.CharField()


class AuthorizedBuyerInputSerializer(serializers.Serializer):
    buyer = serializers.CharField(max_length=64, help_text="The buyer's ref.")


class AuthorizedBuyerOutputSerializer(serializers.Serializer):
    buyer = serializers.CharField(source="buyer.ref")
    name = serializers.CharField(source="buyer.name")
    created_at = serializers.DateTimeField()


class AuthorizedSellerOutputSerializer(serializers.Serializer):
    seller = serializers.CharField(source="seller.ref")
    name = serializers.CharField(source="seller.name")
    created_at = serializers.DateTimeField()
