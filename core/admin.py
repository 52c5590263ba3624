"""What every app's admin shares: read-only bases, confirm-first actions, and the audit trail.

The audit trail shows on each audited object's History page, and as one read-only list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from core.audit import audit_entries_for
from core.models import AuditEntry

CONFIRM_ACTION_TEMPLATE = "admin/confirm_action.html"

F = TypeVar("F", bound=forms.Form)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the system or their owners write elsewhere: Ops look, never add, change or delete here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """The rows under an object, shown as they are."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def confirm_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    form_class: type[F],
    title: str,
    submit: str,
    apply: Callable[[F], None],
    intro: str = "",
    objects: Sequence[Any] | None = None,
    describe: Callable[[Any], str] = str,
) -> HttpResponse | None:
    """An action that asks first, like Django's delete_selected: show ``form_class`` for the selected rows,
    then ``apply`` the valid form posted back with ``apply``.

    ``objects`` are the rows listed and posted back (the queryset's by default); ``describe`` says
    what the action does to one of them.
    """
    if "apply" in request.POST:
        form = form_class(request.POST)
        if form.is_valid():
            apply(form)
            return None
    else:
        form = form_class()
    rows = list(queryset) if objects is None else list(objects)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro or f"{submit} decides:",
        "submit": submit,
        "form": form,
        "objects": rows,
        "targets": [describe(obj) for obj in rows],
        "action": request.POST.get("action", ""),
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media + form.media,
    }
    return TemplateResponse(request, CONFIRM_ACTION_TEMPLATE, context)


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
class AuditEntryAdmin(ReadOnlyAdmin):
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


# The periodic task pages, registered here so that the schedule writes they make are audited.
import core.admin_schedules  # noqa: E402, F401
