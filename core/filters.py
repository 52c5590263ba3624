"""Filters shared by the apps' filter sets."""

from datetime import datetime
from typing import Any

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from core.instants import InstantError, instant_parse


class InstantFormField(forms.Field):
    """An instant read by the API's one parser (``core.instants``): no offset means UTC."""

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        try:
            return instant_parse(str(value))
        except InstantError as exc:
            # The message quotes the input, which may hold "%": pass it as a parameter, never as the format.
            raise forms.ValidationError("%(reason)s", code="invalid", params={"reason": str(exc)}) from None


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantFilter(django_filters.Filter):
    field_class = InstantFormField
