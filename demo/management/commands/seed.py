import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Account
from core.periodic import schedules_install
from demo.seed import accounts_demo_seed, catalog_seed, deals_demo_seed


class Command(BaseCommand):
    help = "Idempotently create the catalog, the periodic schedules, one demo account per role and, when DJANGO_SUPERUSER_* are set, an admin user."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-demo", action="store_true", help="Skip the demo accounts.")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        for item in catalog_seed():
            self.stdout.write(f"catalog: created {item}")
        for name in schedules_install():
            self.stdout.write(f"schedule: created {name}")
        if not options["no_demo"]:
            for item in accounts_demo_seed():
                self.stdout.write(f"account: created {item}")
            for item in deals_demo_seed(
                seller=Account.objects.get(ref="demo-seller"), buyer=Account.objects.get(ref="demo-buyer")
            ):
                self.stdout.write(f"deals: created {item}")
        self._superuser()
        self.stdout.write(self.style.SUCCESS("Seed complete."))

    def _superuser(self) -> None:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        if not (username and password):
            return
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            return
        User.objects.create_superuser(
            username=username, password=password, email=os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        )
        self.stdout.write(f"admin: created superuser {username}")
