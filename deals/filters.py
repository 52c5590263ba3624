from typing import Any

import django_filters
from django.db.models import QuerySet

from core.filters import InstantFilter
from deals.models import Deal, DealStatus

# The bounds of a stored amount (deals.models.money_field): a bound outside them is a 400, not a database error.
MONEY_DIGITS, MONEY_PLACES = 19, 4
ORDERINGS = [("-updated_at", "Most recently updated first (default)"), ("updated_at", "Oldest update first")]


class DealFilter(django_filters.FilterSet):
    seller = django_filters.CharFilter(field_name="seller__ref", help_text="A seller's ref.")
    status = django_filters.ChoiceFilter(choices=DealStatus.choices)
    currency = django_filters.CharFilter(method="filter_currency", help_text="ISO 4217 code, any case.")
    updated_after = InstantFilter(
        field_name="updated_at", lookup_expr="gt", help_text="Only deals updated strictly after this instant."
    )
    min_price = django_filters.NumberFilter(
        field_name="final_price",
        lookup_expr="gte",
        help_text="Final price (after discount) at least this.",
        max_digits=MONEY_DIGITS,
        decimal_places=MONEY_PLACES,
    )
    max_price = django_filters.NumberFilter(
        field_name="final_price",
        lookup_expr="lte",
        help_text="Final price (after discount) at most this.",
        max_digits=MONEY_DIGITS,
        decimal_places=MONEY_PLACES,
    )
    ordering = django_filters.ChoiceFilter(
        choices=ORDERINGS, method="filter_ordering", help_text="Applied by the cursor pagination."
    )

    class Meta:
        model = Deal
        fields: list[str] = []

    def filter_currency(self, queryset: QuerySet[Deal], name: str, value: str) -> QuerySet[Deal]:
        return queryset.filter(currency=value.strip().upper())

    def filter_ordering(self, queryset: QuerySet[Deal], name: str, value: Any) -> QuerySet[Deal]:
        return queryset
