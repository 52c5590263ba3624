"""Celery tasks of the pricing context: thin wrappers that take ids and call services."""

from __future__ import annotations

import logging
from datetime import date

from celery import shared_task
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from catalog.models import Dataset, Frequency
from pricing import services
from pricing.coincap import CoinCapUnavailable

logger = logging.getLogger(__name__)

LOCK_SECONDS = 15 * 60


def _datasets_for(frequency: str) -> list[int]:
    wanted = [frequency, Frequency.MONTH] if frequency == Frequency.DAY else [frequency]
    return list(
        Dataset.objects.filter(frequencies__frequency__in=wanted)
        .exclude(Q(coincap_id=""))
        .distinct()
        .values_list("pk", flat=True)
    )


@shared_task(acks_late=True)
def prices_sync(frequency: str) -> int:
    """Enqueue the sync of every dataset offering ``frequency`` (1d also feeds 1mo)."""
    ids = _datasets_for(frequency)
    for dataset_id in ids:
        price_sync.delay(dataset_id, frequency)
    return len(ids)


@shared_task(
    acks_late=True, autoretry_for=(CoinCapUnavailable,), retry_backoff=60, retry_backoff_max=900, max_retries=3
)
def price_sync(dataset_id: int, frequency: str) -> int:
    """Fetch and store the new points of one dataset frequency; one run at a time per series."""
    dataset = Dataset.objects.prefetch_related("frequencies").filter(pk=dataset_id).first()
    if dataset is None:
        return 0
    lock = f"pricing:sync:{dataset_id}:{frequency}"
    if not cache.add(lock, "1", LOCK_SECONDS):
        logger.info("Price sync of %s %s already running; skipped", dataset.symbol, frequency)
        return 0
    try:
        return services.price_sync(dataset=dataset, frequency=frequency).stored
    finally:
        cache.delete(lock)


@shared_task(acks_late=True)
def prices_derive_monthly() -> int:
    """Re-derive the last two months of every dataset sold monthly from its daily prices."""
    total = 0
    for dataset in Dataset.objects.filter(frequencies__frequency=Frequency.MONTH).prefetch_related("frequencies"):
        total += services.price_monthly_derive(dataset=dataset)
    return total


@shared_task(acks_late=True)
def market_caps_backfill(date: str | None = None) -> int:
    """Enqueue today's (or ``date``'s) market-cap snapshot of every dataset with a CoinCap id."""
    day = date or timezone.now().date().isoformat()
    ids = list(Dataset.objects.exclude(coincap_id="").values_list("pk", flat=True))
    for dataset_id in ids:
        market_cap_snapshot.delay(dataset_id, day)
    return len(ids)


@shared_task(
    acks_late=True, autoretry_for=(CoinCapUnavailable,), retry_backoff=60, retry_backoff_max=900, max_retries=5
)
def market_cap_snapshot(dataset_id: int, day: str | None = None) -> str | None:
    """Store one dataset's market cap for one UTC day (idempotent)."""
    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        return None
    snapshot = services.market_cap_snapshot_store(dataset=dataset, day=date.fromisoformat(day) if day else None)
    return str(snapshot.market_cap_usd)
