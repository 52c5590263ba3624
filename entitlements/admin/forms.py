"""The forms of the entitlements admin: the intermediate pages of the bulk actions and the request page's decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from core.errors import ProblemError
from entitlements import services
from entitlements.models import Grant

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
