"""The audit trail in the admin: on each audited object's History page, and as one read-only list."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from core.audit import audit_entries_for
from core.models import AuditEntry


class AuditHistoryMixin:
    """Show the object's audit entries (who, when, what, why) above Django's own History rows."""

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        context = dict(extra_context or {})
        if obj is not None:
            context["audit_entries"] = list(audit_entries_for(obj))
            context["audit_list_url"] = (
                reverse("admin:core_auditentry_changelist")
                + "?"
                + urlencode(
                    {"content_type__id__exact": context["audit_entries"][0].content_type_id, "object_id": obj.pk}
                )
                if context["audit_entries"]
                else ""
            )
        return super().history_view(request, object_id, extra_context=context)  # type: ignore[misc]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "action", "object_repr", "message", "reason"]
    list_filter = ["action", "content_type"]
    search_fields = ["=object_id", "object_repr", "actor", "message", "reason"]
    date_hierarchy = "at"

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request)
        object_id = request.GET.get("object_id")
        return queryset.filter(object_id=object_id) if object_id else queryset

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        return lookup == "object_id" or super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# The periodic task pages, registered here so that the schedule writes they make are audited.
import core.admin_schedules  # noqa: E402, F401
