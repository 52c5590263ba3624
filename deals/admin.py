from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import AuditHistoryMixin, ReadOnlyAdmin, ReadOnlyInline
from core.audit import admin_actor
from deals import services
from deals.models import BuyerAuthorization, Deal, DealItem


class DealItemInline(ReadOnlyInline):
    model = DealItem
    fields = ("position", "ref", "name", "price")
    readonly_fields = fields


@admin.register(Deal)
class DealAdmin(AuditHistoryMixin, ReadOnlyAdmin):
    """Read-only: deals are the sellers' to change, through the API, so every rule and event applies."""

    list_display = ["name", "seller", "status", "currency", "total_price", "final_price", "version", "updated_at"]
    list_filter = ["status", "currency", "updated_at"]
    search_fields = ["name", "public_id", "seller__ref", "items__ref"]
    list_select_related = ["seller"]
    date_hierarchy = "updated_at"
    inlines = [DealItemInline]


@admin.register(BuyerAuthorization)
class BuyerAuthorizationAdmin(admin.ModelAdmin):
    """Ops authorise and de-authorise buyers on a seller's behalf; removal takes effect at once."""

    list_display = ["seller", "buyer", "created_at", "created_by"]
    list_filter = ["created_at"]
    search_fields = ["seller__ref", "seller__name", "buyer__ref", "buyer__name"]
    list_select_related = ["seller", "buyer", "created_by_user", "created_by_account"]
    autocomplete_fields = ["seller", "buyer"]
    fields = ["seller", "buyer", "created_at", "created_by_user", "created_by_account"]
    readonly_fields = ["created_at", "created_by_user", "created_by_account"]
    actions = ["delete_selected"]

    @admin.display(description="Created by")
    def created_by(self, obj: BuyerAuthorization) -> str:
        if obj.created_by_user is not None:
            return f"admin:{obj.created_by_user.get_username()}"
        if obj.created_by_account is not None:
            return obj.created_by_account.ref
        return "system"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: BuyerAuthorization, form: Any = None, change: bool = False) -> None:
        authorization, created = services.authorization_create(
            seller=obj.seller, buyer=obj.buyer, actor=admin_actor(request)
        )
        obj.pk = authorization.pk
        obj.created_at = authorization.created_at
        if not created:
            messages.info(request, f"{obj.buyer.ref} was already authorised by {obj.seller.ref}.")

    def delete_model(self, request: HttpRequest, obj: BuyerAuthorization) -> None:
        services.authorization_delete(seller=obj.seller, buyer_ref=obj.buyer.ref, actor=admin_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[BuyerAuthorization]) -> None:
        for authorization in queryset.select_related("seller", "buyer"):
            services.authorization_delete(
                seller=authorization.seller, buyer_ref=authorization.buyer.ref, actor=admin_actor(request)
            )
