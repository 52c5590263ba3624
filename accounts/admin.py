from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from accounts import services
from accounts.models import Account, AccountAPIKey, Role
from core.admin import AuditHistoryMixin
from core.audit import admin_actor

admin.site.unregister(APIKey)

MINT_OPS_KEY_PERMISSION = "accounts.add_ops_api_key"
CHANGE_ROLE_PERMISSION = "accounts.change_account_role"


class AccountAPIKeyInline(admin.TabularInline):
    model = AccountAPIKey
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("prefix", "name", "created", "expiry_date", "revoked", "revoked_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AccountForm(forms.ModelForm):
    reason = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"size": 60}),
        label="Reason for a role change",
        help_text="Kept in the account's History with the change.",
    )

    class Meta:
        model = Account
        fields = ["ref", "name", "role", "email", "is_active", "is_suspended"]


@admin.register(Account)
class AccountAdmin(AuditHistoryMixin, admin.ModelAdmin):
    list_display = ["ref", "name", "role", "email", "is_active", "is_suspended", "created_at"]
    list_filter = ["role", "is_active", "is_suspended"]
    search_fields = ["ref", "name", "email"]
    form = AccountForm
    inlines = [AccountAPIKeyInline]

    def get_fields(self, request: HttpRequest, obj: Account | None = None) -> list[str]:  # type: ignore[override]
        fields = ["ref", "name", "role", "email", "is_active", "is_suspended"]
        if obj is not None and request.user.has_perm(CHANGE_ROLE_PERMISSION):
            fields.append("reason")
        return [*fields, "created_at", "updated_at"] if obj else fields

    def get_readonly_fields(self, request: HttpRequest, obj: Account | None = None) -> list[str]:  # type: ignore[override]
        if obj is None:
            return []
        # The ref is the account's identity; its role changes only with a permission of its own.
        fixed = ["ref", "created_at", "updated_at"]
        return fixed if request.user.has_perm(CHANGE_ROLE_PERMISSION) else [*fixed, "role"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and "role" in form.base_fields and not request.user.has_perm(CHANGE_ROLE_PERMISSION):
            # Creating an Ops account is giving the Ops role: it takes the same permission.
            form.base_fields["role"].choices = [  # type: ignore[attr-defined]
                c for c in Role.choices if c[0] != Role.OPS
            ]
        return form

    def save_model(self, request: HttpRequest, obj: Account, form: Any, change: bool) -> None:
        # Through the services, so every change is checked the same way and audited with who made it.
        data, actor = form.cleaned_data, admin_actor(request)
        if not change:
            created = services.account_create(
                ref=data["ref"],
                name=data["name"],
                role=data["role"],
                email=data["email"],
                is_active=data["is_active"],
                is_suspended=data["is_suspended"],
                actor=actor,
            )
            obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at
            return
        stored = Account.objects.get(pk=obj.pk)
        services.account_update(
            account=stored,
            actor=actor,
            **{field: data[field] for field in ("name", "email", "is_active", "is_suspended") if field in data},
        )
        new_role = data.get("role", stored.role)
        if new_role != stored.role and request.user.has_perm(CHANGE_ROLE_PERMISSION):
            services.account_role_change(account=stored, role=new_role, actor=actor, reason=data.get("reason", ""))
        obj.role, obj.updated_at = stored.role, stored.updated_at

    def delete_model(self, request: HttpRequest, obj: Account) -> None:
        services.account_delete(account=obj, actor=admin_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        for account in queryset:
            services.account_delete(account=account, actor=admin_actor(request))


class APIKeyAddForm(forms.ModelForm):
    """Add a key by the account's ref, as Ops know accounts; an Ops account's key needs its own permission."""

    account_ref = forms.CharField(label="Account ref", help_text="The account's ref, e.g. demo-quant.")
    may_mint_for_ops = False

    class Meta:
        model = AccountAPIKey
        fields = ["name", "expiry_date"]

    def clean_account_ref(self) -> Account:
        ref = self.cleaned_data["account_ref"].strip()
        account = Account.objects.filter(ref=ref).first()
        if account is None:
            raise forms.ValidationError(f"No account has the ref “{ref}”.")
        if account.role == Role.OPS and not self.may_mint_for_ops:
            raise forms.ValidationError(
                f"{ref} is an Ops account: creating its keys needs the permission "
                "“Can create API keys for Ops accounts”."
            )
        return account


@admin.register(AccountAPIKey)
class AccountAPIKeyAdmin(AuditHistoryMixin, APIKeyModelAdmin):
    list_display = ("prefix", "name", "account", "created", "expiry_date", "_has_expired", "revoked", "last_used_at")  # type: ignore[assignment]
    list_filter = ("revoked", "account__role", "created")  # type: ignore[assignment]
    search_fields = ("prefix", "name", "account__ref")  # type: ignore[assignment]
    list_select_related = ["account"]
    actions = ["revoke_selected"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:  # type: ignore[override]
        if obj is None:
            return ["account_ref", "name", "expiry_date"]
        return ["prefix", "account", "name", "created", "expiry_date", "revoked", "revoked_at", "last_used_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("prefix", "account", "created", "revoked", "revoked_at", "last_used_at")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = type(
                "APIKeyAddForm", (APIKeyAddForm,), {"may_mint_for_ops": request.user.has_perm(MINT_OPS_KEY_PERMISSION)}
            )
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any = None, change: bool = False) -> None:
        if change:
            data = form.cleaned_data
            stored = AccountAPIKey.objects.select_related("account").get(pk=obj.pk)
            services.api_key_update(
                api_key=stored,
                name=data.get("name", stored.name),
                expires_at=data.get("expiry_date", stored.expiry_date),
                actor=admin_actor(request),
            )
            return
        api_key, key = services.api_key_create(
            account=form.cleaned_data["account_ref"],
            name=obj.name,
            expires_at=obj.expiry_date,
            actor=admin_actor(request),
        )
        obj.pk = api_key.pk
        obj.account = api_key.account
        obj.prefix = api_key.prefix
        obj.created = api_key.created
        obj.key_shown_once = key

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.api_key_delete(api_key=obj, actor=admin_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AccountAPIKey]) -> None:
        for api_key in queryset.select_related("account"):
            services.api_key_delete(api_key=api_key, actor=admin_actor(request))

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: str | None = None) -> HttpResponse:
        # The key goes into this page alone: not into a message (a cookie), a redirect or a cache.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "API key created",
            "api_key": obj,
            "key": obj.key_shown_once,
        }
        response = TemplateResponse(request, "admin/accounts/accountapikey/key_created.html", context)
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[AccountAPIKey]) -> None:
        count = 0
        for api_key in queryset.filter(revoked=False).select_related("account"):
            services.api_key_revoke(api_key=api_key, actor=admin_actor(request))
            count += 1
        messages.success(request, f"Revoked {count} API key(s).")
