"""List filters of the entitlements admin: the queues open on what is pending."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from catalog.models import Frequency
from entitlements.models import GrantStatus, ItemStatus, RequestStatus
from entitlements.selectors import grants_with_status


class _DefaultPendingFilter(admin.SimpleListFilter):
    """A status filter that opens on ``pending``: the queue is what Ops come for."""

    title = "status"
    parameter_name = "status"
    ALL = "all"
    statuses: list[tuple[str, str]] = []

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*self.statuses, (self.ALL, "All")]

    def value(self) -> str:
        return super().value() or ItemStatus.PENDING

    def choices(self, changelist: Any) -> Iterator[Any]:  # type: ignore[override]
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset if value == self.ALL else queryset.filter(status=value)


class RequestStatusFilter(_DefaultPendingFilter):
    statuses = list(RequestStatus.choices)


class ItemStatusFilter(_DefaultPendingFilter):
    statuses = list(ItemStatus.choices)


class RequestFrequencyFilter(admin.SimpleListFilter):
    title = "frequency"
    parameter_name = "frequency"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(Frequency.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(items__frequency=self.value()) if self.value() else queryset


class GrantStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (GrantStatus.ACTIVE, "Active (in force now)"),
            (GrantStatus.EXPIRED, "Expired"),
            (GrantStatus.REVOKED, "Revoked"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return grants_with_status(queryset, status=value) if value else queryset
