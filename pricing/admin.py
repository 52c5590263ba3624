"""Read-only admin of stored prices, coverage, sync state and market caps (the data is the source's),
and the pricing panels on the catalog's dataset page."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from catalog.admin import DatasetAdmin
from catalog.models import Dataset
from core.admin import ReadOnlyAdmin
from pricing.admin_panels import dataset_pricing_context
from pricing.models import MarketCapSnapshot, PriceCoverage, PricePoint, PriceSyncState


@admin.register(PricePoint)
class PricePointAdmin(ReadOnlyAdmin):
    list_display = ["dataset", "frequency", "timestamp", "price_usd", "source", "is_partial"]
    list_filter = ["frequency", "source", "dataset", "is_partial"]
    list_select_related = ["dataset"]
    show_full_result_count = False
    ordering = ["-timestamp"]


@admin.register(MarketCapSnapshot)
class MarketCapSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["dataset", "date", "market_cap_usd", "price_usd", "supply", "source", "estimated", "updated_at"]
    list_filter = ["dataset", "source", "estimated"]
    list_select_related = ["dataset"]
    date_hierarchy = "date"


@admin.register(PriceSyncState)
class PriceSyncStateAdmin(ReadOnlyAdmin):
    list_display = [
        "dataset",
        "frequency",
        "source",
        "last_point_at",
        "last_success_at",
        "last_error_at",
        "healthy",
        "points_stored",
    ]
    list_filter = ["frequency", "source", "dataset"]
    list_select_related = ["dataset"]

    @admin.display(boolean=True, description="Healthy")
    def healthy(self, obj: PriceSyncState) -> bool:
        return obj.healthy


@admin.register(PriceCoverage)
class PriceCoverageAdmin(ReadOnlyAdmin):
    list_display = ["dataset", "frequency", "start", "end"]
    list_filter = ["frequency", "dataset"]
    list_select_related = ["dataset"]


# The catalog's dataset page with the price chart, market caps and sync status: the catalog
# admin knows nothing of pricing, so pricing registers the page again with its panels added.
admin.site.unregister(Dataset)


@admin.register(Dataset)
class DatasetPricingAdmin(DatasetAdmin):
    change_form_template = "admin/pricing/dataset_change_form.html"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        dataset = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if dataset is not None:
            context.update(dataset_pricing_context(dataset=dataset))
        return super().change_view(request, object_id, form_url, extra_context=context)
