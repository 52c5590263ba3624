"""Beat schedules installed on migrate, and the Ops admin pages for pricing."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from config.celery import app as celery_app
from pricing.models import MarketCapSnapshot, PricePoint, PriceSyncState

pytestmark = pytest.mark.django_db


def _worker_tasks() -> set[str]:
    """The task names a worker registers: it imports every app's tasks module when it starts."""
    celery_app.loader.import_default_modules()
    return set(celery_app.tasks)


def test_market_cap_backfill_is_scheduled_daily_at_20_utc():
    PeriodicTask.objects.filter(name__startswith="pricing.").delete()
    call_command("migrate", verbosity=0)
    task = PeriodicTask.objects.select_related("crontab").get(name="pricing.backfill-market-caps")
    assert task.task == "pricing.tasks.market_caps_backfill"
    assert task.task in _worker_tasks()
    assert task.enabled and task.interval is None
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_week, cron.day_of_month, cron.month_of_year) == (
        "0",
        "20",
        "*",
        "*",
        "*",
    )
    assert str(cron.timezone) == "UTC"
    now = datetime(2025, 3, 30, 19, 59, tzinfo=UTC)  # the day Europe moves its clocks: still 20:00 UTC
    remaining = cron.schedule.remaining_estimate(now)
    assert remaining <= timedelta(minutes=1, seconds=1)


def test_price_sync_schedules_are_installed_by_seed_too():
    PeriodicTask.objects.filter(name__startswith="pricing.").delete()
    call_command("seed", "--no-demo")
    tasks = {t.name: t for t in PeriodicTask.objects.filter(name__startswith="pricing.").select_related("crontab")}
    assert set(tasks) == {
        "pricing.backfill-market-caps",
        "pricing.sync-prices-1h",
        "pricing.sync-prices-1d",
        "pricing.derive-prices-1mo",
    }
    assert tasks["pricing.sync-prices-1h"].kwargs == '{"frequency": "1h"}'
    assert (tasks["pricing.sync-prices-1h"].crontab.minute, tasks["pricing.sync-prices-1h"].crontab.hour) == ("5", "*")
    assert tasks["pricing.sync-prices-1d"].kwargs == '{"frequency": "1d"}'
    for task in tasks.values():
        assert task.task in _worker_tasks()
        assert str(task.crontab.timezone) == "UTC"


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops-admin", "ops@example.com", "pw-0123456789")
    client.force_login(user)
    return client


def test_dataset_admin_page_shows_chart_market_caps_and_sync_status(staff_client, btc, settings):
    settings.PRICE_SOURCE = "synthetic"
    from pricing import services

    services.price_sync(dataset=btc, frequency="1d")
    PriceSyncState.objects.create(dataset=btc, frequency="1h", last_error="CoinCapUnavailable: server error (503)")
    for day, cap in ((2, "1812345678901.25"), (3, "1912345678901.5")):
        MarketCapSnapshot.objects.create(
            dataset=btc,
            date=date(2025, 1, day),
            market_cap_usd=Decimal(cap),
            price_usd=Decimal("96000"),
            supply=Decimal("19800000"),
            source="coincap",
            source_timestamp=datetime(2025, 1, day, 20, tzinfo=UTC),
        )
    response = staff_client.get(f"/admin/catalog/dataset/{btc.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html and "<polyline" in html
    assert "last 90 days" in html
    assert "synthetic" in html  # the chart's source is labelled
    assert "Price sync status" in html
    assert "server error (503)" in html  # 1h failed
    assert "<td>1912345678901.5</td>" in html and "market cap (USD)</title>" in html
    assert "http" not in html.split('id="pricing-chart"')[1].split("</fieldset>")[0].replace(
        "http://www.w3.org/2000/svg", ""
    )  # the chart loads nothing from anywhere


def test_the_market_cap_chart_leaves_gaps_in_the_data_blank(staff_client, btc):
    for day in (2, 3, 4, 10):  # 5..9 missing: no line may join the 4th to the 10th
        MarketCapSnapshot.objects.create(
            dataset=btc,
            date=date(2025, 1, day),
            market_cap_usd=Decimal(1_800_000_000_000 + day),
            price_usd=Decimal("96000"),
            supply=Decimal("19800000"),
            source="coincap",
            source_timestamp=datetime(2025, 1, day, 20, tzinfo=UTC),
        )
    html = staff_client.get(f"/admin/catalog/dataset/{btc.pk}/change/").content.decode()
    chart = html.split('id="pricing-market-caps"')[1].split("</svg>")[0]
    [line] = re.findall(r'<polyline [^>]*points="([^"]+)"', chart)
    assert len(line.split()) == 3  # the 2nd, 3rd and 4th
    assert chart.count("<circle") == 1  # the 10th, on its own


def test_price_admin_is_read_only(staff_client, btc):
    PricePoint.objects.create(
        dataset=btc, frequency="1d", timestamp=timezone.now(), price_usd=Decimal("1.5"), source="coincap"
    )
    assert staff_client.get("/admin/pricing/pricepoint/").status_code == 200
    assert staff_client.get("/admin/pricing/pricepoint/add/").status_code == 403
    point = PricePoint.objects.get()
    page = staff_client.get(f"/admin/pricing/pricepoint/{point.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert staff_client.get("/admin/pricing/marketcapsnapshot/add/").status_code == 403
    assert staff_client.get("/admin/pricing/pricesyncstate/").status_code == 200
