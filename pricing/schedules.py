"""Periodic pricing tasks, installed into django-celery-beat (UTC) by ``migrate`` and ``seed``."""

from celery.schedules import crontab

PERIODIC_TASKS = {
    "pricing.backfill-market-caps": {
        "task": "pricing.tasks.market_caps_backfill",
        "schedule": crontab(hour=20, minute=0),
        "description": "Stores today's market cap of every dataset at 20:00 UTC (idempotent per dataset and day).",
    },
    "pricing.sync-prices-1h": {
        "task": "pricing.tasks.prices_sync",
        "schedule": crontab(minute=5),
        "kwargs": {"frequency": "1h"},
        "description": "Fetches new hourly prices of every dataset sold hourly, five minutes past each hour.",
    },
    "pricing.sync-prices-1d": {
        "task": "pricing.tasks.prices_sync",
        "schedule": crontab(hour=0, minute=15),
        "kwargs": {"frequency": "1d"},
        "description": "Fetches new daily prices of every dataset sold daily or monthly, at 00:15 UTC.",
    },
    "pricing.derive-prices-1mo": {
        "task": "pricing.tasks.prices_derive_monthly",
        "schedule": crontab(hour=0, minute=45),
        "description": "Re-derives the monthly points of the last two months from daily prices, at 00:45 UTC.",
    },
}
