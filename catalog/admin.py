from django.contrib import admin

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

    @admin.display(description="Frequencies")
    def frequency_list(self, obj: Dataset) -> str:
        return ", ".join(f.frequency for f in obj.frequencies.all())

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).prefetch_related("frequencies")
