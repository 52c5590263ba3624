"""The one way the API reads an instant, in a query parameter or a body alike.

ISO 8601: ``2025-01-01T12:00:00Z``, ``2025-01-01T14:00:00+02:00``. A value without an
offset (``2025-01-01T12:00:00``) means UTC, and a date alone (``2025-01-01``) means
that day's midnight UTC. The result is always an aware UTC datetime between
``EARLIEST`` and ``LATEST``; anything else is a validation error naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
FORMAT_HELP = "ISO 8601; a date alone or a time without an offset means UTC"


class InstantError(ValueError):
    """The value is not an instant the API accepts; the message says why."""


def instant_parse(value: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime (no offset: UTC)."""
    text = value.strip()
    if text.count(" ") == 1 and text[-6:-5] == " ":
        text = text.replace(" ", "+")  # an unencoded '+' of an offset arrives in a query string as a space
    if "\x00" in text:
        raise InstantError(f"Not an ISO 8601 instant ({FORMAT_HELP}), e.g. 2025-01-01T00:00:00Z.")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InstantError(
            f"'{value}' is not an ISO 8601 instant ({FORMAT_HELP}), e.g. 2025-01-01T00:00:00Z."
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = LATEST + (LATEST - EARLIEST)  # outside the calendar once converted: out of range below
    if not EARLIEST <= moment <= LATEST:
        raise InstantError(f"'{value}' is out of range ({EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}).")
    return moment


@extend_schema_field({"type": "string", "format": "date-time"})
class InstantField(serializers.DateTimeField):
    """A body field read with :func:`instant_parse`, written as ISO 8601 UTC."""

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            value = value.isoformat()
        if not isinstance(value, str):
            self.fail("invalid", format=FORMAT_HELP)
        try:
            return instant_parse(value)
        except InstantError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from None
