from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin import AuditHistoryMixin, ReadOnlyAdmin, ReadOnlyInline, confirm_action
from core.audit import admin_actor
from core.errors import ProblemError
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, Endpoint, Event, EventRecipient


class DisableForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text="Shown to the owner and in the endpoint's disabled reason.")


class RedeliverSinceForm(forms.Form):
    since = forms.DateTimeField(
        help_text="Redeliver failed deliveries created at or after this time (UTC, YYYY-MM-DD HH:MM).",
        initial=lambda: (timezone.now() - timedelta(days=1)).replace(second=0, microsecond=0),
    )


_ENDPOINT_FIELDS: tuple[str, ...] = (
    "account",
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
)


@admin.register(Endpoint)
class EndpointAdmin(AuditHistoryMixin, admin.ModelAdmin):
    list_display = ["id", "account", "url", "enabled", "disabled_reason", "failing_since", "deliveries_link"]
    list_filter = ["enabled", "account__role"]
    search_fields = ["url", "description", "account__ref"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    fields = _ENDPOINT_FIELDS
    readonly_fields = tuple(f for f in _ENDPOINT_FIELDS if f != "description")
    actions = ["enable_selected", "disable_selected", "redeliver_failed_since"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # endpoints belong to their owners, who register them over the API

    def save_model(self, request: HttpRequest, obj: Endpoint, form: Any, change: bool) -> None:
        # Through the service, so the change is in the endpoint's audit trail with who made it.
        services.endpoint_update(endpoint=obj, actor=admin_actor(request), description=form.cleaned_data["description"])

    def delete_model(self, request: HttpRequest, obj: Endpoint) -> None:
        # The service's delete: nothing more reaches the receiver once it returns, and it is audited.
        services.endpoint_delete(endpoint=obj, actor=admin_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        for endpoint in queryset:
            services.endpoint_delete(endpoint=endpoint, actor=admin_actor(request))

    @admin.display(description="Deliveries")
    def deliveries_link(self, obj: Endpoint) -> str:
        url = reverse("admin:webhooks_delivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">deliveries</a>', url)

    @admin.action(description="Re-enable selected endpoints", permissions=["change"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        count = 0
        for endpoint in queryset.filter(enabled=False):
            services.endpoint_enable(endpoint=endpoint, actor=admin_actor(request))
            count += 1
        messages.success(request, f"Re-enabled {count} endpoint(s). Redeliver what failed meanwhile if needed.")

    @admin.action(description="Disable selected endpoints…", permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> HttpResponse | None:
        def apply(form: DisableForm) -> None:
            count = sum(
                services.endpoint_disable(
                    endpoint=endpoint, reason=form.cleaned_data["reason"], actor=admin_actor(request)
                )
                for endpoint in queryset
            )
            messages.success(request, f"Disabled {count} endpoint(s).")

        return confirm_action(
            self,
            request,
            queryset,
            form_class=DisableForm,
            title="Disable webhook endpoints",
            intro="These endpoints will stop receiving deliveries; their owners get a webhook_endpoint.disabled event.",
            submit="Disable",
            apply=apply,
        )

    @admin.action(description="Redeliver failed deliveries since…", permissions=["change"])
    def redeliver_failed_since(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> HttpResponse | None:
        def apply(form: RedeliverSinceForm) -> None:
            total = 0
            for endpoint in queryset:
                try:
                    total += services.deliveries_redeliver_failed(
                        endpoint=endpoint, since=form.cleaned_data["since"], actor=admin_actor(request)
                    )
                except ProblemError as exc:
                    messages.error(request, f"{endpoint}: {exc.detail}")
            messages.success(request, f"Queued {total} failed deliveries again.")

        return confirm_action(
            self,
            request,
            queryset,
            form_class=RedeliverSinceForm,
            title="Redeliver failed deliveries",
            intro="Every failed delivery of these endpoints since the time below is sent again, same webhook-id.",
            submit="Redeliver",
            apply=apply,
        )


_DELIVERY_FIELDS: tuple[str, ...] = (
    "event",
    "endpoint",
    "status",
    "attempt_count",
    "round_attempts",
    "next_attempt_at",
    "lease_expires_at",
    "last_attempt_at",
    "last_status_code",
    "last_error",
    "created_at",
    "completed_at",
)


class DeliveryAttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = readonly_fields = (
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "error",
        "response_body",
        "url",
    )


@admin.register(Delivery)
class DeliveryAdmin(AuditHistoryMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempt_count",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", ("endpoint", admin.RelatedOnlyFieldListFilter), "event__type"]
    search_fields = ["event__public_id", "endpoint__url", "endpoint__account__ref"]
    list_select_related = ["event", "endpoint"]
    date_hierarchy = "created_at"
    readonly_fields = _DELIVERY_FIELDS
    fields = readonly_fields
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver_selected"]

    @admin.display(description="Event type", ordering="event__type")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Delivery, form: Any, change: bool) -> None:
        return  # every field is read-only: a save would write a stale copy over what the sender recorded

    @admin.action(description="Redeliver selected deliveries now", permissions=["change"])
    def redeliver_selected(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        if not self.has_change_permission(request):
            raise PermissionDenied
        done = 0
        for delivery in queryset:
            try:
                services.delivery_redeliver(delivery=delivery, actor=admin_actor(request))
                done += 1
            except ProblemError as exc:
                messages.error(request, f"{delivery}: {exc.detail}")
        messages.success(request, f"Redelivering {done} deliveries.")


class EventRecipientInline(ReadOnlyInline):
    model = EventRecipient
    fields = readonly_fields = ("account",)


class EventDeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = readonly_fields = (
        "endpoint",
        "status",
        "attempt_count",
        "last_status_code",
        "last_error",
        "next_attempt_at",
    )
    show_change_link = True


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "public_id", "type", "created_at", "dispatched_at"]
    list_filter = ["type"]
    search_fields = ["public_id", "type"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "public_id",
        "type",
        "data",
        "created_at",
        "dispatched_at",
    )
    inlines = [EventRecipientInline, EventDeliveryInline]
