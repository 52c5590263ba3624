from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from core.instants import InstantField
from core.pagination import page_size_value
from core.queries import QueryField, QueryListField, QuerySerializer
from webhooks.catalog import EVENT_TYPES
from webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Endpoint, Event
from webhooks.services import envelope

_EVENT_TYPES_HELP = 'Event types to receive; empty or ["*"] for all. Known: ' + ", ".join(EVENT_TYPES) + "."


class EndpointOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Endpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_at",
            "disabled_reason",
            "failing_since",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "event_types": {"help_text": _EVENT_TYPES_HELP},
            "previous_secret_expires_at": {
                "help_text": "After a rotation, until when the previous secret also signs deliveries."
            },
        }


class EndpointWithSecretOutputSerializer(EndpointOutputSerializer):
    secret = serializers.CharField(help_text="The signing secret. Shown only once: store it now.")

    class Meta(EndpointOutputSerializer.Meta):
        fields = [*EndpointOutputSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class EndpointCreateInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="An http(s) URL; it must resolve to a public address.")
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        max_length=50,
        help_text=_EVENT_TYPES_HELP,
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class EndpointUpdateInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=50, help_text=_EVENT_TYPES_HELP
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    enabled = serializers.BooleanField(
        required=False, help_text="false disables the endpoint; true re-enables it and clears the disabled reason."
    )


class DeliveryAttemptOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "duration_ms", "status_code", "error", "response_body", "url"]
        read_only_fields = fields


class DeliveryEventSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id", help_text="The webhook-id.")
    type = serializers.CharField()
    timestamp = serializers.DateTimeField(source="created_at")


class DeliveryOutputSerializer(serializers.ModelSerializer):
    event = DeliveryEventSerializer()
    endpoint = serializers.IntegerField(source="endpoint_id")
    attempts = DeliveryAttemptOutputSerializer(many=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "endpoint",
            "event",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "completed_at",
            "attempts",
        ]
        read_only_fields = fields


class RedeliverFailedInputSerializer(serializers.Serializer):
    since = InstantField(help_text="Redeliver the failed deliveries created at or after this time.")


class RedeliverFailedOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="How many failed deliveries were queued again.")


class EventOutputSerializer(serializers.Serializer):
    """The webhook envelope, identical to the body receivers get."""

    id = serializers.CharField(help_text="The webhook-id of this event.")
    type = serializers.CharField()
    timestamp = serializers.DateTimeField()
    data = serializers.JSONField()  # type: ignore[assignment]  # a field named like Serializer.data, as on the wire

    def to_representation(self, instance: Event) -> dict[str, Any]:
        return envelope(instance)


class EventFeedOutputSerializer(serializers.Serializer):
    results = EventOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null when you are up to date.")
    cursor = serializers.CharField(
        allow_null=True, help_text="Pass as ?after= to continue from here later (the id of the last event listed)."
    )


def _event_types(values: list[str]) -> list[str]:
    types = [t for value in values for t in value.split(",") if t]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"Unknown event type(s): {', '.join(unknown)}.")
    return types


def _delivery_status(value: str) -> str:
    if value not in DeliveryStatus.values:
        raise ValueError(f"Unknown status {value!r}; one of {', '.join(DeliveryStatus.values)}.")
    return value


class EventFeedQuerySerializer(QuerySerializer):
    """``GET /events``: after an event id, of some types, a page of a size."""

    after = QueryField(lambda value: value or None)
    type = QueryListField(_event_types, default=list)
    page_size = QueryField(
        lambda value: page_size_value(value, maximum=settings.API_MAX_PAGE_SIZE), default=lambda: settings.API_PAGE_SIZE
    )


class DeliveryListQuerySerializer(QuerySerializer):
    """``GET /webhook-endpoints/{id}/deliveries``: only deliveries of one status."""

    status = QueryField(_delivery_status)
