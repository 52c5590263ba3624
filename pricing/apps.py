from django.apps import AppConfig


class PricingConfig(AppConfig):
    name = "pricing"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from catalog.cache import catalog_cache_forget
        from pricing.models import MarketCapSnapshot

        # The public catalog shows each dataset's latest market cap.
        post_save.connect(catalog_cache_forget, sender=MarketCapSnapshot, dispatch_uid="catalog-cache-market-cap")
        post_delete.connect(catalog_cache_forget, sender=MarketCapSnapshot, dispatch_uid="catalog-cache-market-cap-d")
