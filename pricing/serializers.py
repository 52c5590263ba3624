from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import Dataset, DatasetFrequency, Frequency
from core.instants import EARLIEST, LATEST, instant_parse
from core.pagination import page_size_value
from core.queries import QueryField, QuerySerializer
from pricing.models import MarketCapSnapshot
from pricing.selectors import decimal_text


@extend_schema_field(OpenApiTypes.STR)
class ExactDecimalField(serializers.Field):
    """A Decimal as an exact string (``"65000.1234"``), never a float."""

    def to_representation(self, value: Decimal) -> str:
        return decimal_text(value)


class PricePointSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField(help_text="The point's instant, UTC (for 1mo: the month's first instant).")
    price_usd = serializers.CharField(help_text="USD price as an exact decimal string.")
    partial = serializers.BooleanField(  # type: ignore[assignment]
        required=False, help_text="1mo only: true while the month is not over or its daily data is incomplete."
    )


class PricePageSerializer(serializers.Serializer):
    """Schema of the JSON price page (the view builds the bytes itself)."""

    dataset = serializers.CharField()
    frequency = serializers.CharField()
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="'coincap' or 'synthetic' (offline demo data); both, comma-separated."
    )
    start = serializers.DateTimeField(help_text="Inclusive start of the requested range.")
    end = serializers.DateTimeField(help_text="Exclusive end of the requested range.")
    data_as_of = serializers.DateTimeField(
        allow_null=True, help_text="When the source last answered for this series and its answer was stored."
    )
    latest_point_at = serializers.DateTimeField(allow_null=True, help_text="Timestamp of the newest stored point.")
    complete = serializers.BooleanField(
        help_text="False when the source failed while fetching a missing part of the range: stored points only."
    )
    warning = serializers.CharField(required=False)
    count = serializers.IntegerField(help_text="Points on this page.")
    results = PricePointSerializer(many=True)
    next = serializers.URLField(allow_null=True)  # type: ignore[assignment]


class MarketCapOutputSerializer(serializers.ModelSerializer):
    market_cap_usd = ExactDecimalField()
    price_usd = ExactDecimalField()
    supply = ExactDecimalField()
    max_supply = ExactDecimalField(allow_null=True)
    volume_usd_24h = ExactDecimalField(allow_null=True)
    change_percent_24h = ExactDecimalField(allow_null=True)

    class Meta:
        model = MarketCapSnapshot
        fields = [
            "date",
            "market_cap_usd",
            "price_usd",
            "supply",
            "max_supply",
            "volume_usd_24h",
            "change_percent_24h",
            "rank",
            "source",
            "estimated",
            "source_timestamp",
            "updated_at",
        ]


class LatestMarketCapSerializer(serializers.Serializer):
    """The latest market-cap snapshot, from the annotations of ``market_cap_latest_annotations``."""

    date = serializers.DateField()
    market_cap_usd = ExactDecimalField()
    price_usd = ExactDecimalField()
    supply = ExactDecimalField()
    source = serializers.CharField()  # type: ignore[assignment]
    estimated = serializers.BooleanField()

    @staticmethod
    def from_annotations(obj: Any) -> dict[str, Any] | None:
        if getattr(obj, "latest_market_cap_date", None) is None:
            return None
        return LatestMarketCapSerializer(
            {
                "date": obj.latest_market_cap_date,
                "market_cap_usd": obj.latest_market_cap_usd,
                "price_usd": obj.latest_market_cap_price_usd,
                "supply": obj.latest_market_cap_supply,
                "source": obj.latest_market_cap_source,
                "estimated": obj.latest_market_cap_estimated,
            }
        ).data


class ProblemSerializer(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    instance = serializers.CharField(required=False)


class DatasetFrequencyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetFrequency
        fields = ["frequency", "approval_mode"]


class DatasetOutputSerializer(serializers.ModelSerializer):
    frequencies = DatasetFrequencyOutputSerializer(many=True)
    latest_market_cap = serializers.SerializerMethodField(
        help_text="The latest daily market-cap snapshot (taken at 20:00 UTC), or null before the first one."
    )

    class Meta:
        model = Dataset
        fields = ["symbol", "name", "frequencies", "latest_market_cap"]

    @extend_schema_field(LatestMarketCapSerializer(allow_null=True))
    def get_latest_market_cap(self, obj: Dataset) -> dict[str, Any] | None:
        return LatestMarketCapSerializer.from_annotations(obj)


# --- query strings -------------------------------------------------------------------

# Defaults when ``start`` is absent: the window before ``end`` a request covers.
DEFAULT_WINDOW: dict[str, timedelta] = {
    Frequency.HOUR: timedelta(days=30),
    Frequency.DAY: timedelta(days=365),
    Frequency.MONTH: timedelta(days=5 * 365 + 1),
}

CURSOR_MESSAGE = "Not a cursor this endpoint issued; follow the 'next' link as given."


def _cursor_decode(value: str) -> datetime | None:
    if not value:
        return None
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        moment = datetime.fromisoformat(text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError(CURSOR_MESSAGE) from None
    if moment.tzinfo is None or not EARLIEST <= moment <= LATEST:
        raise ValueError(CURSOR_MESSAGE)
    return moment.astimezone(UTC)


def _instant(value: str) -> datetime | None:
    """An instant parameter; empty is the same as absent."""
    return instant_parse(value) if value else None


class PriceQuerySerializer(QuerySerializer):
    """``GET /datasets/{symbol}/prices``. Context: the dataset's ``offered`` frequencies and ``now``."""

    frequency = QueryField(str, default="")
    format = QueryField(str)
    end = QueryField(_instant)
    start = QueryField(_instant)
    page_size = QueryField(
        lambda value: page_size_value(value, maximum=settings.PRICE_MAX_PAGE_SIZE),
        default=lambda: settings.PRICE_PAGE_SIZE,
    )
    cursor = QueryField(_cursor_decode)

    def validate_frequency(self, frequency: str) -> str:
        symbol, offered = self.context["symbol"], self.context["offered"]
        if not frequency:
            raise serializers.ValidationError(f"Required; {symbol} offers {', '.join(offered)}.")
        if frequency not in offered:
            raise serializers.ValidationError(f"{symbol} does not offer '{frequency}'; it offers {', '.join(offered)}.")
        return frequency

    def validate_format(self, fmt: str | None) -> str:
        fmt = fmt or self.context["request"].accepted_renderer.format
        if fmt not in ("json", "csv"):
            raise serializers.ValidationError("Must be 'json' or 'csv'.")
        return fmt

    def validate_start(self, start: datetime | None) -> datetime | None:
        # The range is checked in declared order, before the paging parameters after it.
        end = self.values.get("end") or self.context["now"]
        frequency = self.values.get("frequency")
        if start is None:
            if frequency is None:  # invalid: its own error is the one answered
                return None
            start = end - DEFAULT_WINDOW[frequency]
        if start >= end:
            raise serializers.ValidationError("Must be before end.")
        return start

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return {**attrs, "end": attrs["end"] or self.context["now"]}


class MarketCapQuerySerializer(QuerySerializer):
    """``GET /datasets/{symbol}/market-caps``: snapshots from ``start`` to ``end``, either open."""

    start = QueryField(_instant)
    end = QueryField(_instant)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["start"] and attrs["end"] and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"start": "Must be before end."})
        return attrs
