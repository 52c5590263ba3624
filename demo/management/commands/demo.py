import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.scheduler import scheduler_start

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "The embedded demo (no DATABASE_URL): make sure an admin user exists, say how to log in and get API keys, "
        "run the periodic schedules in-process, and serve on ADDRPORT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument(
            "--new-admin-password",
            action="store_true",
            help=f"Give the demo admin user '{ADMIN_USERNAME}' a new generated password, print it, and stop.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.EMBEDDED:
            raise CommandError(
                "The demo runs the embedded SQLite database: unset DATABASE_URL, or run the full stack with "
                "`docker compose up` (web, worker and beat)."
            )
        User = get_user_model()
        user = User.objects.filter(username=ADMIN_USERNAME).first()
        if options["new_admin_password"] or user is None:
            password = secrets.token_urlsafe(12)
            if user is None:
                User.objects.create_superuser(username=ADMIN_USERNAME, email="", password=password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            login = f"user {ADMIN_USERNAME}, password {password} (shown this once)"
        else:
            login = f"user {ADMIN_USERNAME} with the password printed when it was created"
        if options["new_admin_password"]:
            self.stdout.write(f"Admin login: {login}.")
            return

        host = options["addrport"] if ":" in options["addrport"] else f"127.0.0.1:{options['addrport']}"
        base = f"http://{host}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Back Office embedded demo",
                    f"  Start page:  {base}/",
                    f"  Admin:       {base}/admin/  {login}.",
                    "               A new admin password: make admin-password",
                    f"  API docs:    {base}/api/docs/",
                    "  API keys:    each demo account's key was printed once, when `seed` created it.",
                    "               A new one: .venv/bin/python manage.py create_api_key --account demo-quant --role quant",
                    "               (or demo-ops/ops, demo-seller/seller, demo-buyer/buyer), or Admin > API keys > Add.",
                    "  In this process:",
                    "    - Celery tasks run inline (no worker): webhook deliveries, emails (printed here).",
                    "    - The periodic schedules run on a timer in this process, as listed in Admin > Periodic tasks:",
                    "      webhook sweeper and retries (every 5 s), trial expiry and expiring notices (every minute),",
                    f"      price syncs and the 20:00 UTC market-cap backfill (price source: {settings.PRICE_SOURCE}).",
                    "      Today's market caps without waiting for 20:00: .venv/bin/python manage.py backfill_market_caps",
                    "    - "
                    + (
                        "Webhooks may go to URLs on this machine (WEBHOOKS_ALLOW_PRIVATE_URLS is on: the demo is local)."
                        if settings.WEBHOOKS_ALLOW_PRIVATE_URLS
                        else "Webhooks go only to public addresses (WEBHOOKS_ALLOW_PRIVATE_URLS is off)."
                    ),
                    "  Not here: no separate worker or beat process, no Redis; data is in "
                    f"{settings.DATABASES['default']['NAME']}.",
                    "",
                ]
            )
        )
        scheduler_start()
        call_command("runserver", options["addrport"], use_reloader=False)
