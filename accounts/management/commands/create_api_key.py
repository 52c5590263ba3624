from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services
from accounts.models import Role
from core.errors import ProblemError


class Command(BaseCommand):
    help = "Create an API key for an account (creating the account if needed); the key is printed on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", required=True, help="Account ref")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--name", default="cli", help="A label for the key")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            account, created = services.account_get_or_create(ref=options["account"], role=options["role"])
            _, key = services.api_key_create(account=account, name=options["name"])
        except ProblemError as exc:
            raise CommandError(str(exc.detail)) from exc
        verb = "Created account" if created else "Account"
        self.stdout.write(f"{verb} {account.ref} ({account.role}); new API key (shown once):")
        self.stdout.write(key)
