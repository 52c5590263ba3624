from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from catalog.cache import catalog_cache_forget
        from catalog.models import Dataset, DatasetFrequency

        for model in (Dataset, DatasetFrequency):
            post_save.connect(catalog_cache_forget, sender=model, dispatch_uid=f"catalog-cache-{model.__name__}")
            post_delete.connect(catalog_cache_forget, sender=model, dispatch_uid=f"catalog-cache-d-{model.__name__}")
