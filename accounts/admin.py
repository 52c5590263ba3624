from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from accounts import services
from accounts.models import Account, AccountAPIKey

admin.site.unregister(APIKey)


class AccountAPIKeyInline(admin.TabularInline):
    model = AccountAPIKey
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("prefix", "name", "created", "expiry_date", "revoked", "revoked_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["ref", "name", "role", "email", "is_active", "is_suspended", "created_at"]
    list_filter = ["role", "is_active", "is_suspended"]
    search_fields = ["ref", "name", "email"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [AccountAPIKeyInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Account | None = None) -> list[str]:
        # ref and role are the account's identity: fixed once created.
        return [*self.readonly_fields, "ref", "role"] if obj else self.readonly_fields


@admin.register(AccountAPIKey)
class AccountAPIKeyAdmin(APIKeyModelAdmin):
    list_display = ("prefix", "name", "account", "created", "expiry_date", "_has_expired", "revoked")  # type: ignore[assignment]
    list_filter = ("revoked", "account__role", "created")  # type: ignore[assignment]
    search_fields = ("prefix", "name", "account__ref")  # type: ignore[assignment]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    actions = ["revoke_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("prefix",)
        return ("prefix", "account", "created", "revoked", "revoked_at", "last_used_at")

    def save_model(self, request: HttpRequest, obj: Any, form: Any = None, change: bool = False) -> None:
        if change:
            obj.save()
            return
        api_key, key = services.api_key_create(account=obj.account, name=obj.name, expires_at=obj.expiry_date)
        obj.pk = api_key.pk
        messages.warning(
            request,
            f"The API key for {api_key.account.ref} is: {key} . Store it somewhere safe: it will not be shown again.",
        )

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[AccountAPIKey]) -> None:
        count = 0
        for api_key in queryset.filter(revoked=False):
            services.api_key_revoke(api_key=api_key)
            count += 1
        messages.success(request, f"Revoked {count} API key(s).")
