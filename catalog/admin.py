from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from catalog.models import Dataset, DatasetFrequency


class DatasetFrequencyInline(admin.TabularInline):
    model = DatasetFrequency
    extra = 0
    fields = ["frequency", "approval_mode"]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["symbol", "name", "coincap_id", "frequency_list"]
    search_fields = ["symbol", "name"]
    inlines = [DatasetFrequencyInline]
    change_form_template = "admin/catalog/dataset/change_form.html"

    @admin.display(description="Frequencies")
    def frequency_list(self, obj: Dataset) -> str:
        return ", ".join(f.frequency for f in obj.frequencies.all())

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).prefetch_related("frequencies")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        from pricing.admin_panels import dataset_pricing_context

        dataset = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if dataset is not None:
            context.update(dataset_pricing_context(dataset=dataset))
        return super().change_view(request, object_id, form_url, extra_context=context)
