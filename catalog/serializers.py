from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import Dataset, DatasetFrequency
from pricing.serializers import LatestMarketCapSerializer


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
