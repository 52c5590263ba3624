from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from catalog.models import Dataset, DatasetFrequency


def datasets_with_frequencies() -> QuerySet[Dataset]:
    return Dataset.objects.prefetch_related(Prefetch("frequencies", queryset=DatasetFrequency.objects.order_by("id")))


def dataset_get(*, symbol: str) -> Dataset:
    """The dataset with ``symbol`` (case-insensitive) and its frequencies, or 404."""
    return get_object_or_404(datasets_with_frequencies(), symbol=symbol.upper())
