"""The Ops back office for entitlements: the pending queue first, decisions with a reason, grants with revoke and extend.

Actions only parse a form and call the services, so the admin and the API share every rule;
a decision that lost a race against another Ops shows as an error message, never a silent change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from catalog.models import Frequency
from core.actors import actor_label
from core.admin import AuditHistoryMixin
from core.errors import ProblemError
from entitlements import services
from entitlements.models import (
    AccessRequest,
    AccessRequestItem,
    Grant,
    GrantChange,
    GrantStatus,
    ItemStatus,
    RequestStatus,
)
from entitlements.selectors import grant_effective_status, grants_with_status

ACTION_FORM_TEMPLATE = "admin/entitlements/action_form.html"

# What the admin calls the fields the services name in their errors.
FIELD_LABELS = {
    "trial_days": "Trial length (days)",
    "expires_at": "End date",
    "reason": "Reason",
    "note": "Note",
    "frequencies": "Frequencies",
    "frequency": "Frequency",
    "account": "Account",
}


def problem_text(exc: ProblemError) -> str:
    """A service error in the admin's words: field labels, not API field names."""
    errors = (exc.extra or {}).get("errors") or {}
    if errors:
        return " ".join(
            f"{FIELD_LABELS.get(field, field.replace('_', ' ').capitalize())}: {' '.join(map(str, messages_))}"
            for field, messages_ in errors.items()
        )
    return str(exc.detail)


# --- forms of the intermediate pages --------------------------------------------------


class NoteForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="Optional; kept.")


class TrialForm(forms.Form):
    trial_days = forms.IntegerField(
        required=False, min_value=1, max_value=services.MAX_TRIAL_DAYS, label="Trial length (days)"
    )
    expires_at = forms.DateTimeField(
        required=False, label="or end date (UTC)", help_text="YYYY-MM-DD HH:MM", widget=forms.DateTimeInput
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        if data.get("trial_days") is None and data.get("expires_at") is None:
            raise forms.ValidationError("Give a trial length in days or an end date.")
        if data.get("trial_days") is not None and data.get("expires_at") is not None:
            raise forms.ValidationError("Give a trial length in days or an end date, not both.")
        try:
            data["resolved_expires_at"] = services.grant_expiry_resolve(
                expires_at=data.get("expires_at"), trial_days=data.get("trial_days")
            )
        except ProblemError as exc:
            raise forms.ValidationError(problem_text(exc)) from None
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Required: the quant sees it and it is kept for audit."
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why.")
        return reason


class ExtendForm(forms.Form):
    extend_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=services.MAX_TRIAL_DAYS,
        label="Extend by (days)",
        help_text="Added to the current end.",
    )
    expires_at = forms.DateTimeField(required=False, label="or new end date (UTC)", help_text="YYYY-MM-DD HH:MM")
    permanent = forms.BooleanField(required=False, label="or make permanent")
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        given = [name for name in ("extend_days", "expires_at", "permanent") if data.get(name) not in (None, False)]
        if len(given) != 1:
            raise forms.ValidationError("Choose exactly one: days to add, a new end date, or permanent.")
        if data.get("expires_at") is not None and data["expires_at"] <= timezone.now():
            raise forms.ValidationError("The new end date must be in the future; revoke to end access now.")
        return data

    def new_expiry(self, grant: Grant) -> datetime | None:
        data = self.cleaned_data
        if data.get("permanent"):
            return None
        if data.get("expires_at") is not None:
            return data["expires_at"]
        base = grant.expires_at if grant.expires_at is not None else timezone.now()
        return max(base, timezone.now()) + timedelta(days=data["extend_days"])


def _selected(model: type, request: HttpRequest) -> list[Any]:
    """The rows ticked on the changelist, whatever the changelist filter shows now."""
    ids = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    rows = model.objects.filter(pk__in=ids).select_related("account", "dataset").order_by("pk")  # type: ignore[attr-defined]
    if model is AccessRequest:
        rows = rows.prefetch_related("items")
    elif model is AccessRequestItem:
        rows = rows.select_related("request__account")
    return list(rows)


def _with_form(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    form_class: type[forms.Form],
    title: str,
    submit: str,
    apply: Callable[[forms.Form], None],
) -> HttpResponse | None:
    """Show ``form_class`` for the selected rows (like delete_selected); on a valid post, ``apply`` it."""
    if "apply" in request.POST:
        form = form_class(request.POST)
        if form.is_valid():
            apply(form)
            return None
    else:
        form = form_class()
    objects = _selected(modeladmin.model, request) or list(queryset)
    context = {
        "targets": [_target_text(obj) for obj in objects],
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "submit": submit,
        "form": form,
        "objects": objects,
        "action": request.POST.get("action", ""),
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media + form.media,
    }
    return TemplateResponse(request, ACTION_FORM_TEMPLATE, context)


def _target_text(obj: Any) -> str:
    """What an intermediate form decides for one selected row, in words."""
    if isinstance(obj, AccessRequest):
        pending = [item.frequency for item in obj.items.all() if item.status == ItemStatus.PENDING]
        what = ", ".join(pending) if pending else "nothing left pending"
        return f"Request #{obj.pk} from {obj.account.name} ({obj.account.ref}): {obj.dataset.symbol} {what}"
    if isinstance(obj, AccessRequestItem):
        account = obj.request.account
        return f"Request #{obj.request_id} from {account.name} ({account.ref}): {obj.dataset.symbol} {obj.frequency}"
    if isinstance(obj, Grant):
        ends = f"ends {obj.expires_at:%Y-%m-%d %H:%M} UTC" if obj.expires_at else "permanent"
        return f"Grant #{obj.pk}: {obj.account.name} ({obj.account.ref}) {obj.dataset.symbol} {obj.frequency}, {ends}"
    return str(obj)


def _report(
    request: HttpRequest, done: list[str], failed: list[str], verb: str, what: str = "access request(s)"
) -> None:
    if done:
        messages.success(request, f"{verb} {len(done)} {what}: {', '.join(done)}.")
    for failure in failed:
        messages.error(request, failure)


def _decide_requests(
    request: HttpRequest, targets: Iterable[tuple[AccessRequest, list[str] | None]], decide: Callable[..., Any]
) -> tuple[list[str], list[str]]:
    done, failed = [], []
    for access_request, frequencies in targets:
        label = f"#{access_request.pk}" + (f" ({', '.join(frequencies)})" if frequencies else "")
        try:
            decide(request=access_request, frequencies=frequencies, actor=request.user)
        except ProblemError as exc:
            failed.append(f"{label}: not changed. {problem_text(exc)}")
        else:
            done.append(label)
    return done, failed


# --- list filters ---------------------------------------------------------------------


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


# --- access requests ------------------------------------------------------------------


def _decided_by(item: AccessRequestItem) -> str:
    if item.decided_at is None:
        return "-"
    if item.decision_rule == services.RULE_CANCELLED:
        return "requester"
    return actor_label(item.decided_by_user, item.decided_by_account)


class DecisionForm(forms.Form):
    """One decision from the request page: approve, approve as a trial, or refuse, for one item or every pending one."""

    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("trial", "Approve as a trial"), ("refuse", "Refuse")]
    )
    item = forms.IntegerField(required=False, label="Item")
    trial_days = forms.IntegerField(
        required=False, min_value=1, max_value=services.MAX_TRIAL_DAYS, label="Trial length (days)"
    )
    expires_on = forms.DateField(required=False, label="Trial end date (UTC)")
    note = forms.CharField(required=False, max_length=2000, label="Note")
    reason = forms.CharField(required=False, max_length=2000, label="Reason")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        if data["decision"] == "refuse" and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why: the quant sees this reason.")
        if data["decision"] == "trial":
            if data.get("expires_on") is not None:
                end = datetime.combine(data["expires_on"], datetime.min.time(), tzinfo=UTC)
                if end <= timezone.now():
                    self.add_error("expires_on", "The end date must be in the future.")
                data["expires_at"] = end
            elif data.get("trial_days") is not None:
                data["expires_at"] = timezone.now() + timedelta(days=data["trial_days"])
            else:
                raise forms.ValidationError("Give a trial length in days or an end date.")
        return data

    def error_text(self) -> str:
        parts = [" ".join(map(str, self.non_field_errors()))]
        for name, errors in self.errors.items():
            if name in self.fields:
                parts.append(f"{self.fields[name].label}: {' '.join(map(str, errors))}")
        return " ".join(part for part in parts if part)


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
                    actor=request.user,  # type: ignore[arg-type]
                    reason=data["reason"],
                )
                messages.success(request, f"Refused {what}: {data['reason'].strip()}")
            else:
                expires_at = data.get("expires_at")
                services.access_request_approve(
                    request=access_request,
                    frequencies=frequencies,
                    actor=request.user,  # type: ignore[arg-type]
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

        return _with_form(
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

        return _with_form(
            self, request, queryset, form_class=ReasonForm, title="Refuse access", submit="Refuse", apply=apply
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

        return _with_form(
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

        return _with_form(
            self, request, queryset, form_class=ReasonForm, title="Refuse items", submit="Refuse", apply=apply
        )


# --- grants ---------------------------------------------------------------------------


class GrantChangeInline(admin.TabularInline):
    model = GrantChange
    extra = 0
    can_delete = False
    fields = ["action", "at", "actor", "reason", "old_expires_at", "new_expires_at"]
    readonly_fields = fields  # type: ignore[assignment]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

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
                actor=request.user,  # type: ignore[arg-type]
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
                    actor=request.user,  # type: ignore[arg-type]
                    reason=form.cleaned_data["reason"],
                ),
                "Revoked",
            )

        return _with_form(
            self, request, queryset, form_class=ReasonForm, title="Revoke access", submit="Revoke", apply=apply
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
                    actor=request.user,  # type: ignore[arg-type]
                    reason=form.cleaned_data["reason"],
                ),
                "Updated the end of",
            )

        return _with_form(
            self, request, queryset, form_class=ExtendForm, title="Extend access", submit="Save new end", apply=apply
        )
