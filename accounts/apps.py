from typing import Any

from django.apps import AppConfig


def _forget_cached_keys(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A key or account saved or deleted in this process is read afresh by its next request."""
    from accounts.models import AccountAPIKey
    from accounts.selectors import api_key_cache_forget

    api_key_cache_forget(prefix=instance.prefix if isinstance(instance, AccountAPIKey) else None)


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts.models import Account, AccountAPIKey

        for model in (Account, AccountAPIKey):
            post_save.connect(_forget_cached_keys, sender=model, dispatch_uid=f"forget-keys-{model.__name__}")
            post_delete.connect(_forget_cached_keys, sender=model, dispatch_uid=f"forget-keys-del-{model.__name__}")
