"""What the bulk actions share: the rows ticked, what an action does to each in words, and the outcome messages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from core.admin import confirm_action
from entitlements.models import AccessRequest, AccessRequestItem, Grant, ItemStatus


def _selected(model: type, request: HttpRequest) -> list[Any]:
    """The rows ticked on the changelist, whatever the changelist filter shows now."""
    ids = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    rows = model.objects.filter(pk__in=ids).select_related("account", "dataset").order_by("pk")  # type: ignore[attr-defined]
    if model is AccessRequest:
        rows = rows.prefetch_related("items")
    elif model is AccessRequestItem:
        rows = rows.select_related("request__account")
    return list(rows)


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


def confirm_selected(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any], **form: Any
) -> HttpResponse | None:
    """``core.admin.confirm_action`` over the ticked rows, each described in words."""
    return confirm_action(
        model_admin,
        request,
        queryset,
        objects=_selected(model_admin.model, request) or list(queryset),
        describe=_target_text,
        **form,
    )
