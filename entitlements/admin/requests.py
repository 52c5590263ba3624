"""Access requests in the admin: the pending queue, the request page with its decision form, items one by one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.actors import actor_label
from core.admin import AuditHistoryMixin
from core.audit import admin_actor
from core.errors import ProblemError
from entitlements import services
from entitlements.admin.actions import _report, _selected, confirm_selected
from entitlements.admin.filters import ItemStatusFilter, RequestFrequencyFilter, RequestStatusFilter
from entitlements.admin.forms import DecisionForm, ReasonForm, TrialForm, problem_text
from entitlements.models import AccessRequest, AccessRequestItem, Grant, ItemStatus, RequestStatus
from entitlements.selectors import grant_effective_status


def _decide_requests(
    request: HttpRequest, targets: Iterable[tuple[AccessRequest, list[str] | None]], decide: Callable[..., Any]
) -> tuple[list[str], list[str]]:
    done, failed = [], []
    for access_request, frequencies in targets:
        label = f"#{access_request.pk}" + (f" ({', '.join(frequencies)})" if frequencies else "")
        try:
            decide(request=access_request, frequencies=frequencies, actor=admin_actor(request))
        except ProblemError as exc:
            failed.append(f"{label}: not changed. {problem_text(exc)}")
        else:
            done.append(label)
    return done, failed


def _decided_by(item: AccessRequestItem) -> str:
    if item.decided_at is None:
        return "-"
    if item.decision_rule == services.RULE_CANCELLED:
        return "requester"
    return actor_label(item.decided_by_user, item.decided_by_account)


@admin.register(AccessRequest)
class AccessRequestAdmin(AuditHistoryMixin, admin.ModelAdmin):
    list_display = ["id", "account_name", "dataset", "pending_items", "reason_excerpt", "status", "waiting"]
    list_display_links = ["id", "account_name"]
    list_filter = [
        RequestStatusFilter,
        "dataset",
        RequestFrequencyFilter,
        ("account", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["=id", "account__ref", "account__name", "reason"]
    list_select_related = ["account", "dataset"]
    ordering = ["created_at", "id"]
    date_hierarchy = "created_at"
    fields = ["account", "dataset", "reason", "status", "created_at", "updated_at"]
    readonly_fields = fields  # type: ignore[assignment]
    actions = ["approve_requests", "approve_requests_trial", "refuse_requests"]
    change_form_template = "admin/entitlements/accessrequest/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessRequest]:
        return (
            super().get_queryset(request).prefetch_related(Prefetch("items", AccessRequestItem.objects.order_by("id")))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: AccessRequest, form: Any, change: bool) -> None:
        return  # every field is read-only: decisions go through the services, and a save would write a stale row

    def get_urls(self) -> list[Any]:
        from django.urls import path

        return [
            path(
                "<int:pk>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="entitlements_accessrequest_decide",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        access_request = self.get_object(request, object_id)
        context = {"title": "Decide access request", **(extra_context or {})}
        if access_request is not None:
            context.update(self._decision_context(request, access_request))
        return super().change_view(request, object_id, form_url, extra_context=context)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, extra_context={"title": "Access requests", **(extra_context or {})})

    def _decision_context(self, request: HttpRequest, access_request: AccessRequest) -> dict[str, Any]:
        account = access_request.account
        items = list(
            access_request.items.select_related("decided_by_user", "decided_by_account")
            .prefetch_related("grants")
            .order_by("id")
        )
        grants = list(
            Grant.objects.filter(account=account).select_related("dataset").order_by("-created_at", "-id")[:20]
        )
        past = list(
            AccessRequest.objects.filter(account=account)
            .exclude(pk=access_request.pk)
            .select_related("dataset")
            .prefetch_related(Prefetch("items", AccessRequestItem.objects.order_by("id")))
            .order_by("-created_at", "-id")[:10]
        )
        return {
            "account": account,
            "items": [
                {"item": item, "decided_by": _decided_by(item), "grants": list(item.grants.all())} for item in items
            ],
            "pending": [item for item in items if item.status == ItemStatus.PENDING],
            "grants": [{"grant": grant, "status": grant_effective_status(grant)} for grant in grants],
            "past_requests": past,
            "can_decide": self.has_change_permission(request, access_request),
            "decide_url": reverse("admin:entitlements_accessrequest_decide", args=[access_request.pk]),
            "default_trial_days": 7,
            "waiting_for": self.waiting(access_request),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }

    def decide_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The request page's per-item controls post here: one decision, then back to the page."""
        from django.core.exceptions import PermissionDenied
        from django.http import HttpResponseNotAllowed, HttpResponseRedirect

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        access_request = self.get_object(request, str(pk))
        if access_request is None:
            return HttpResponseRedirect(reverse("admin:entitlements_accessrequest_changelist"))
        if not self.has_change_permission(request, access_request):
            raise PermissionDenied
        page = reverse("admin:entitlements_accessrequest_change", args=[access_request.pk])
        form = DecisionForm(request.POST)
        if not form.is_valid():
            messages.error(request, f"Nothing decided. {form.error_text()}")
            return HttpResponseRedirect(page)
        data = form.cleaned_data
        frequencies: list[str] | None = None
        if data.get("item"):
            item = access_request.items.filter(pk=data["item"]).first()
            if item is None:
                messages.error(request, "Nothing decided: that item is not part of this request.")
                return HttpResponseRedirect(page)
            frequencies = [item.frequency]
        what = f"#{access_request.pk} {access_request.dataset.symbol} " + (
            ", ".join(frequencies) if frequencies else "every pending item"
        )
        try:
            if data["decision"] == "refuse":
                services.access_request_refuse(
                    request=access_request,
                    frequencies=frequencies,
                    actor=admin_actor(request),
                    reason=data["reason"],
                )
                messages.success(request, f"Refused {what}: {data['reason'].strip()}")
            else:
                expires_at = data.get("expires_at")
                services.access_request_approve(
                    request=access_request,
                    frequencies=frequencies,
                    actor=admin_actor(request),
                    expires_at=expires_at,
                    note=data.get("note", ""),
                )
                until = f" as a trial until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
                messages.success(request, f"Approved {what}{until}.")
        except ProblemError as exc:
            messages.error(request, f"{what}: not changed. {problem_text(exc)}")
        return HttpResponseRedirect(page)

    @admin.display(description="account", ordering="account__name")
    def account_name(self, obj: AccessRequest) -> str:
        return format_html("{}<br><small>{}</small>", obj.account.name, obj.account.ref)

    @admin.display(description="pending items")
    def pending_items(self, obj: AccessRequest) -> str:
        pending = [item.frequency for item in obj.items.all() if item.status == ItemStatus.PENDING]
        return ", ".join(pending) or "-"

    @admin.display(description="reason")
    def reason_excerpt(self, obj: AccessRequest) -> str:
        reason = obj.reason or ""
        short = reason if len(reason) <= 90 else reason[:89] + "…"
        return format_html('<span title="{}">{}</span>', reason, short or "-")

    @admin.display(description="items")
    def items_summary(self, obj: AccessRequest) -> str:
        return ", ".join(f"{item.frequency}: {item.status}" for item in obj.items.all())

    @admin.display(description="waiting", ordering="created_at")
    def waiting(self, obj: AccessRequest) -> str:
        if obj.status != RequestStatus.PENDING:
            return "-"
        seconds = (timezone.now() - obj.created_at).total_seconds()
        if seconds < 3600:
            return f"{max(int(seconds // 60), 1)} min"
        if seconds < 48 * 3600:
            return f"{seconds / 3600:.0f} h"
        return f"{seconds / 86400:.0f} days"

    @admin.action(description="Approve selected requests (every pending item)", permissions=["change"])
    def approve_requests(self, request: HttpRequest, queryset: QuerySet[AccessRequest]) -> None:
        targets = [(r, None) for r in _selected(AccessRequest, request) or queryset]
        done, failed = _decide_requests(request, targets, services.access_request_approve)
        _report(request, done, failed, "Approved")

    @admin.action(description="Approve selected requests as a trial…", permissions=["change"])
    def approve_requests_trial(self, request: HttpRequest, queryset: QuerySet[AccessRequest]) -> HttpResponse | None:
        def apply(form: forms.Form) -> None:
            def decide(**kwargs: Any) -> None:
                services.access_request_approve(
                    **kwargs, expires_at=form.cleaned_data["resolved_expires_at"], note=form.cleaned_data["note"]
                )

            targets = [(r, None) for r in _selected(AccessRequest, request)]
            done, failed = _decide_requests(request, targets, decide)
            _report(request, done, failed, "Approved as a trial")

        return confirm_selected(
            self,
            request,
            queryset,
            form_class=TrialForm,
            title="Approve as a trial",
            submit="Approve as a trial",
            apply=apply,
        )

    @admin.action(description="Refuse selected requests…", permissions=["change"])
    def refuse_requests(self, request: HttpRequest, queryset: QuerySet[AccessRequest]) -> HttpResponse | None:
        def apply(form: forms.Form) -> None:
            def decide(**kwargs: Any) -> None:
                services.access_request_refuse(**kwargs, reason=form.cleaned_data["reason"])

            targets = [(r, None) for r in _selected(AccessRequest, request)]
            done, failed = _decide_requests(request, targets, decide)
            _report(request, done, failed, "Refused")

        return confirm_selected(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Refuse access",
            submit="Refuse",
            apply=apply,
        )


def _items_by_request(items: Iterable[AccessRequestItem]) -> list[tuple[AccessRequest, list[str] | None]]:
    grouped: dict[int, tuple[AccessRequest, list[str]]] = {}
    frequencies: dict[int, list[str]] = defaultdict(list)
    for item in items:
        grouped.setdefault(item.request_id, (item.request, frequencies[item.request_id]))
        frequencies[item.request_id].append(item.frequency)
    return [(access_request, freqs) for access_request, freqs in grouped.values()]


@admin.register(AccessRequestItem)
class AccessRequestItemAdmin(admin.ModelAdmin):
    """One frequency of a request: where Ops decide items one by one."""

    list_display = [
        "id",
        "request_link",
        "account",
        "dataset",
        "frequency",
        "status",
        "decided_at",
        "decided_by",
        "decision_rule",
        "decision_note",
    ]
    list_filter = [ItemStatusFilter, "dataset", "frequency", "decided_automatically"]
    search_fields = ["=id", "=request__id", "account__ref", "account__name"]
    list_select_related = ["request", "account", "dataset", "decided_by_user", "decided_by_account"]
    ordering = ["request__created_at", "id"]
    fields = [
        "request",
        "account",
        "dataset",
        "frequency",
        "status",
        "decided_at",
        "decided_by_user",
        "decided_by_account",
        "decided_automatically",
        "decision_rule",
        "decision_note",
    ]
    readonly_fields = fields  # type: ignore[assignment]
    actions = ["approve_items", "approve_items_trial", "refuse_items"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: AccessRequestItem, form: Any, change: bool) -> None:
        return  # every field is read-only: decisions go through the actions, and a save would write a stale row

    @admin.display(description="request", ordering="request__created_at")
    def request_link(self, obj: AccessRequestItem) -> str:
        url = reverse("admin:entitlements_accessrequest_change", args=[obj.request_id])
        return format_html('<a href="{}">#{}</a>', url, obj.request_id)

    @admin.display(description="decided by")
    def decided_by(self, obj: AccessRequestItem) -> str:
        return _decided_by(obj)

    def _selected_items(self, request: HttpRequest, queryset: QuerySet[AccessRequestItem]) -> list[AccessRequestItem]:
        ids: list[Any] = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME) or [item.pk for item in queryset]
        return list(
            AccessRequestItem.objects.filter(pk__in=ids)
            .select_related("request__account", "request__dataset")
            .order_by("id")
        )

    @admin.action(description="Approve selected items", permissions=["change"])
    def approve_items(self, request: HttpRequest, queryset: QuerySet[AccessRequestItem]) -> None:
        targets = _items_by_request(self._selected_items(request, queryset))
        done, failed = _decide_requests(request, targets, services.access_request_approve)
        _report(request, done, failed, "Approved", "request item group(s)")

    @admin.action(description="Approve selected items as a trial…", permissions=["change"])
    def approve_items_trial(self, request: HttpRequest, queryset: QuerySet[AccessRequestItem]) -> HttpResponse | None:
        def apply(form: forms.Form) -> None:
            def decide(**kwargs: Any) -> None:
                services.access_request_approve(
                    **kwargs, expires_at=form.cleaned_data["resolved_expires_at"], note=form.cleaned_data["note"]
                )

            targets = _items_by_request(self._selected_items(request, queryset))
            done, failed = _decide_requests(request, targets, decide)
            _report(request, done, failed, "Approved as a trial", "request item group(s)")

        return confirm_selected(
            self,
            request,
            queryset,
            form_class=TrialForm,
            title="Approve items as a trial",
            submit="Approve as a trial",
            apply=apply,
        )

    @admin.action(description="Refuse selected items…", permissions=["change"])
    def refuse_items(self, request: HttpRequest, queryset: QuerySet[AccessRequestItem]) -> HttpResponse | None:
        def apply(form: forms.Form) -> None:
            def decide(**kwargs: Any) -> None:
                services.access_request_refuse(**kwargs, reason=form.cleaned_data["reason"])

            targets = _items_by_request(self._selected_items(request, queryset))
            done, failed = _decide_requests(request, targets, decide)
            _report(request, done, failed, "Refused", "request item group(s)")

        return confirm_selected(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Refuse items",
            submit="Refuse",
            apply=apply,
        )
