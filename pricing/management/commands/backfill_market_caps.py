import sys
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.models import Dataset
from core.errors import FieldError
from pricing import services
from pricing.coincap import CoinCapError
from pricing.selectors import decimal_text


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date: '{value}' is not a date in YYYY-MM-DD form") from None


class Command(BaseCommand):
    help = (
        "Store the market cap of every dataset for one UTC day (today by default; a past day is estimated from "
        "that day's daily price and the current supply). Idempotent: running it again updates the same rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=_day, help="The UTC day, YYYY-MM-DD (default: today).")
        parser.add_argument("--dataset", action="append", help="Only this symbol (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        datasets = Dataset.objects.exclude(coincap_id="").order_by("symbol")
        if options["dataset"]:
            datasets = datasets.filter(symbol__in=[s.upper() for s in options["dataset"]])
        failures = []
        bar = tqdm(list(datasets), desc="market caps", unit="dataset", file=sys.stderr, disable=False)
        for dataset in bar:
            bar.set_postfix_str(dataset.symbol)
            try:
                snapshot = services.market_cap_snapshot_store(dataset=dataset, day=options["date"])
            except FieldError as exc:
                raise CommandError(str(exc.detail)) from exc
            except CoinCapError as exc:
                failures.append(f"{dataset.symbol}: {exc}")
                continue
            flag = " (estimated)" if snapshot.estimated else ""
            self.stdout.write(
                f"{dataset.symbol} {snapshot.date.isoformat()} market cap {decimal_text(snapshot.market_cap_usd)} USD "
                f"from {snapshot.source}{flag}"
            )
        if failures:
            raise CommandError("Some market caps could not be stored: " + "; ".join(failures))
        self.stdout.write(self.style.SUCCESS("Market caps stored."))
