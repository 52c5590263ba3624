"""Grants in the admin: give access directly, revoke or move the end with a reason, each change kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from core.actors import actor_label
from core.admin import AuditHistoryMixin, ReadOnlyInline
from core.audit import admin_actor
from core.errors import ProblemError
from entitlements import services
from entitlements.admin.actions import _report, _selected, confirm_selected
from entitlements.admin.filters import GrantStatusFilter
from entitlements.admin.forms import ExtendForm, ReasonForm, problem_text
from entitlements.models import Grant, GrantChange
from entitlements.selectors import grant_effective_status


class GrantChangeInline(ReadOnlyInline):
    model = GrantChange
    fields = ["action", "at", "actor", "reason", "old_expires_at", "new_expires_at"]
    readonly_fields = fields  # type: ignore[assignment]

    def get_queryset(self, request: HttpRequest) -> QuerySet[GrantChange]:
        return super().get_queryset(request).select_related("actor_user", "actor_account")

    @admin.display(description="by")
    def actor(self, change: GrantChange) -> str:
        return actor_label(change.actor_user, change.actor_account)


class GrantAddForm(forms.ModelForm):
    trial_days = forms.IntegerField(
        required=False, min_value=1, max_value=services.MAX_TRIAL_DAYS, help_text="Or leave empty for no trial."
    )

    class Meta:
        model = Grant
        fields = ["account", "dataset", "frequency", "expires_at", "note"]


@admin.register(Grant)
class GrantAdmin(AuditHistoryMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "account",
        "dataset",
        "frequency",
        "effective_status",
        "starts_at",
        "expires_at",
        "created_by",
        "request_link",
    ]
    list_filter = [GrantStatusFilter, "dataset", "frequency", ("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=id", "account__ref", "account__name", "note", "revoke_reason"]
    list_select_related = ["account", "dataset", "item", "created_by_user", "created_by_account"]
    raw_id_fields = ["account"]
    date_hierarchy = "created_at"
    inlines = [GrantChangeInline]
    actions = ["revoke_grants", "extend_grants"]
    readonly_fields = [
        "account",
        "dataset",
        "frequency",
        "effective_status",
        "starts_at",
        "expires_at",
        "created_at",
        "created_by",
        "request_link",
        "note",
        "revoked_at",
        "revoked_by",
        "revoke_reason",
        "expiring_notified_at",
    ]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = GrantAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:  # type: ignore[override]
        if obj is None:
            return ["account", "dataset", "frequency", "expires_at", "trial_days", "note"]
        return list(self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:  # type: ignore[override]
        return list(self.readonly_fields) if obj is not None else []

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[type]:  # type: ignore[override]
        return [GrantChangeInline] if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Grant, form: Any, change: bool) -> None:
        if change:
            return  # grants change only through the actions, which keep the audit trail
        data = form.cleaned_data
        try:
            grant = services.grant_create(
                account=data["account"],
                dataset=data["dataset"],
                frequency=data["frequency"],
                actor=admin_actor(request),
                expires_at=services.grant_expiry_resolve(
                    expires_at=data.get("expires_at"), trial_days=data.get("trial_days")
                ),
                note=data.get("note", ""),
            )
        except ProblemError as exc:
            messages.error(request, f"Nothing granted. {problem_text(exc)}")
            return
        obj.pk = grant.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return  # the service wrote everything

    def response_add(self, request: HttpRequest, obj: Grant, post_url_continue: str | None = None) -> HttpResponse:
        if obj.pk is None:
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if obj.pk is not None:
            return super().log_addition(request, obj, message)
        return None

    @admin.display(description="status")
    def effective_status(self, obj: Grant) -> str:
        return grant_effective_status(obj)

    @admin.display(description="created by")
    def created_by(self, obj: Grant) -> str:
        return actor_label(obj.created_by_user, obj.created_by_account)

    @admin.display(description="revoked by")
    def revoked_by(self, obj: Grant) -> str:
        return actor_label(obj.revoked_by_user, obj.revoked_by_account) if obj.revoked_at else "-"

    @admin.display(description="request")
    def request_link(self, obj: Grant) -> str:
        if obj.item is None:
            return "direct grant"
        url = reverse("admin:entitlements_accessrequest_change", args=[obj.item.request_id])
        return format_html('<a href="{}">#{}</a>', url, obj.item.request_id)

    def _apply_each(self, request: HttpRequest, change: Callable[[Grant], Any], verb: str) -> None:
        done, failed = [], []
        for grant in _selected(Grant, request):
            try:
                change(grant)
            except ProblemError as exc:
                failed.append(f"Grant #{grant.pk}: not changed. {problem_text(exc)}")
            else:
                done.append(f"#{grant.pk}")
        _report(request, done, failed, verb, "grant(s)")

    @admin.action(description="Revoke selected grants…", permissions=["change"])
    def revoke_grants(self, request: HttpRequest, queryset: QuerySet[Grant]) -> HttpResponse | None:
        def apply(form: forms.Form) -> None:
            self._apply_each(
                request,
                lambda grant: services.grant_revoke(
                    grant=grant,
                    actor=admin_actor(request),
                    reason=form.cleaned_data["reason"],
                ),
                "Revoked",
            )

        return confirm_selected(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Revoke access",
            submit="Revoke",
            apply=apply,
        )

    @admin.action(description="Extend or change the end of selected grants…", permissions=["change"])
    def extend_grants(self, request: HttpRequest, queryset: QuerySet[Grant]) -> HttpResponse | None:
        def apply(form: forms.Form) -> None:
            assert isinstance(form, ExtendForm)
            self._apply_each(
                request,
                lambda grant: services.grant_update_expiry(
                    grant=grant,
                    expires_at=form.new_expiry(grant),
                    actor=admin_actor(request),
                    reason=form.cleaned_data["reason"],
                ),
                "Updated the end of",
            )

        return confirm_selected(
            self,
            request,
            queryset,
            form_class=ExtendForm,
            title="Extend access",
            submit="Save new end",
            apply=apply,
        )
