from django.db.models import QuerySet
from django_filters import rest_framework as filters

from catalog.models import Frequency
from entitlements.models import AccessRequest, Grant, GrantStatus, RequestStatus
from entitlements.selectors import grants_with_status


class AccessRequestFilter(filters.FilterSet):
    dataset = filters.CharFilter(method="filter_dataset", help_text="Dataset symbol.")
    frequency = filters.ChoiceFilter(
        field_name="items__frequency", choices=Frequency.choices, help_text="Requests with an item at this frequency."
    )
    status = filters.ChoiceFilter(choices=RequestStatus.choices)
    account = filters.CharFilter(field_name="account__ref", help_text="Account ref.")

    class Meta:
        model = AccessRequest
        fields = ["dataset", "frequency", "status", "account"]

    def filter_dataset(self, queryset: QuerySet[AccessRequest], name: str, value: str) -> QuerySet[AccessRequest]:
        return queryset.filter(dataset__symbol=value.upper())


class GrantFilter(filters.FilterSet):
    account = filters.CharFilter(field_name="account__ref", help_text="Account ref.")
    dataset = filters.CharFilter(method="filter_dataset", help_text="Dataset symbol.")
    frequency = filters.ChoiceFilter(choices=Frequency.choices)
    status = filters.ChoiceFilter(
        method="filter_status",
        choices=GrantStatus.choices,
        help_text="active = in force now; expired = past expires_at (marked or not yet); revoked.",
    )

    class Meta:
        model = Grant
        fields = ["account", "dataset", "frequency", "status"]

    def filter_dataset(self, queryset: QuerySet[Grant], name: str, value: str) -> QuerySet[Grant]:
        return queryset.filter(dataset__symbol=value.upper())

    def filter_status(self, queryset: QuerySet[Grant], name: str, value: str) -> QuerySet[Grant]:
        return grants_with_status(queryset, status=value)
