from django.contrib import admin
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from catalog import services
from catalog.models import Dataset, DatasetFrequency
from core.admin import AuditHistoryMixin
from core.audit import admin_actor


class DatasetFrequencyInline(admin.TabularInline):
    model = DatasetFrequency
    extra = 0
    fields = ["frequency", "approval_mode"]


@admin.register(Dataset)
class DatasetAdmin(AuditHistoryMixin, admin.ModelAdmin):
    list_display = ["symbol", "name", "coincap_id", "frequency_list"]
    search_fields = ["symbol", "name"]
    inlines = [DatasetFrequencyInline]

    @admin.display(description="Frequencies")
    def frequency_list(self, obj: Dataset) -> str:
        return ", ".join(f.frequency for f in obj.frequencies.all())

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).prefetch_related("frequencies")

    # Every write goes through the catalog services, so each change is audited with who made it.

    def save_model(self, request: HttpRequest, obj: Dataset, form: ModelForm, change: bool) -> None:
        fields = {field: form.cleaned_data[field] for field in ("symbol", "name", "coincap_id")}
        if change:
            services.dataset_update(dataset=Dataset.objects.get(pk=obj.pk), actor=admin_actor(request), **fields)
        else:
            created = services.dataset_create(**fields, actor=admin_actor(request))
            obj.pk, obj.created_at = created.pk, created.created_at

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: BaseInlineFormSet, change: bool) -> None:
        actor, dataset = admin_actor(request), form.instance
        formset.save(commit=False)  # sorts the rows into new, changed and deleted without writing
        for offered in formset.deleted_objects:
            services.dataset_frequency_remove(dataset_frequency=offered, actor=actor)
        for offered, _ in formset.changed_objects:
            services.dataset_frequency_update(
                dataset_frequency=offered, frequency=offered.frequency, approval_mode=offered.approval_mode, actor=actor
            )
        for offered in formset.new_objects:
            added = services.dataset_frequency_add(
                dataset=dataset, frequency=offered.frequency, approval_mode=offered.approval_mode, actor=actor
            )
            offered.pk = added.pk

    def delete_model(self, request: HttpRequest, obj: Dataset) -> None:
        services.dataset_delete(dataset=obj, actor=admin_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        for dataset in queryset:
            services.dataset_delete(dataset=dataset, actor=admin_actor(request))
