"""Filters shared by the apps' filter sets."""

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, converted to UTC.

    Python accepts offsets up to +-23:59 and PostgreSQL only up to +-15:59, so the value
    reaches the database in UTC; an instant outside the calendar once converted is a
    validation error naming the parameter, not a server error."""

    def clean(self, value: Any) -> datetime | None:
        moment = super().clean(value)
        if moment is None or moment.tzinfo is None:
            return moment
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Out of range once converted to UTC.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
