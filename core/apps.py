from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _install_schedules(sender: AppConfig, **kwargs: Any) -> None:
    from core.periodic import schedules_install

    schedules_install()


class CoreConfig(AppConfig):
    name = "core"

    def ready(self) -> None:
        from django.conf import settings
        from django.contrib import admin

        from core.admin_login import throttled_login

        admin.site.site_header = settings.ADMIN_SITE_HEADER
        admin.site.site_title = settings.ADMIN_SITE_HEADER
        admin.site.index_title = "Operations"
        admin.site.login = throttled_login(admin.site.login)  # type: ignore[method-assign]
        post_migrate.connect(_install_schedules, sender=self)
