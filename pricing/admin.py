"""Read-only admin of stored prices, coverage, sync state and market caps (the data is the source's)."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
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
