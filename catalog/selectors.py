from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from catalog.models import Dataset, DatasetFrequency


def datasets_with_frequencies() -> QuerySet[Dataset]:
    return Dataset.objects.prefetch_related(Prefetch("frequencies", queryset=DatasetFrequency.objects.order_by("id")))


def dataset_get(*, symbol: str) -> Dataset:
    """The dataset with ``symbol`` (case-insensitive) and its frequencies, or 404."""
    return get_object_or_404(datasets_with_frequencies(), symbol=symbol.upper())


def dataset_list() -> QuerySet[Dataset]:
    """The public listing: datasets with their frequencies and, in the same query, their latest market cap."""
    from pricing.selectors import market_cap_latest_annotations

    return datasets_with_frequencies().annotate(**market_cap_latest_annotations())


def dataset_detail_get(*, symbol: str) -> Dataset:
    """One dataset as the public listing shows it, or 404."""
    return get_object_or_404(dataset_list(), symbol=symbol.upper())
