from django.db import models
from django.utils import timezone

from catalog.models import Frequency


class PriceSource(models.TextChoices):
    COINCAP = "coincap", "CoinCap"
    SYNTHETIC = "synthetic", "Synthetic (offline demo data)"


class PricePoint(models.Model):
    """The USD price of a dataset's asset at one instant of one frequency.

    1h and 1d points come from the source as they are; 1mo points are derived from
    the daily ones (the month's last daily price, stamped at the first instant of the
    month), and ``is_partial`` marks a month whose daily data is not complete yet.
    """

    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="price_points")
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    timestamp = models.DateTimeField()
    price_usd = models.DecimalField(max_digits=38, decimal_places=18)
    source = models.CharField(max_length=16, choices=PriceSource.choices)
    is_partial = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset", "frequency", "timestamp"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "frequency", "timestamp"], name="uniq_price_point"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} {self.frequency} {self.timestamp:%Y-%m-%d %H:%M} {self.price_usd}"


class PriceCoverage(models.Model):
    """A time range ``[start, end)`` of one dataset frequency that has been fetched from the
    source and stored, whether or not the source had points in it.

    Ranges of a dataset frequency never overlap: storing merges them. A range outside
    every coverage row has not been fetched yet and is fetched on demand.
    """

    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="price_coverage")
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    start = models.DateTimeField()
    end = models.DateTimeField()

    class Meta:
        ordering = ["dataset", "frequency", "start"]
        verbose_name_plural = "price coverage"
        indexes = [models.Index(fields=["dataset", "frequency", "start"], name="price_coverage_idx")]
        constraints = [models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="coverage_not_empty")]

    def __str__(self) -> str:
        return f"{self.dataset_id} {self.frequency} [{self.start:%Y-%m-%d %H:%M}, {self.end:%Y-%m-%d %H:%M})"


class PriceSyncState(models.Model):
    """Where the price series of one dataset frequency stands: last point, last success, last error."""

    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="price_sync_states")
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    source = models.CharField(max_length=16, choices=PriceSource.choices, blank=True)
    last_point_at = models.DateTimeField(null=True, blank=True, help_text="Timestamp of the latest stored point.")
    last_success_at = models.DateTimeField(
        null=True, blank=True, help_text="When the source last answered and its points were stored."
    )
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    points_stored = models.PositiveIntegerField(default=0, help_text="Points written by the last success.")

    class Meta:
        ordering = ["dataset", "frequency"]
        constraints = [models.UniqueConstraint(fields=["dataset", "frequency"], name="uniq_price_sync_state")]

    def __str__(self) -> str:
        return f"{self.dataset_id} {self.frequency} sync"

    @property
    def healthy(self) -> bool:
        return self.last_success_at is not None and (
            self.last_error_at is None or self.last_error_at < self.last_success_at
        )


class MarketCapSnapshot(models.Model):
    """One dataset's market capitalisation on one UTC day; storing the same day again updates it.

    Today's snapshot comes from the source's asset endpoint. A past day's is
    ``estimated``: that day's daily price times the circulating supply known when stored.
    """

    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="market_cap_snapshots")
    date = models.DateField(help_text="The UTC day.")
    market_cap_usd = models.DecimalField(max_digits=38, decimal_places=18)
    price_usd = models.DecimalField(max_digits=38, decimal_places=18)
    supply = models.DecimalField(max_digits=38, decimal_places=18)
    max_supply = models.DecimalField(max_digits=38, decimal_places=18, null=True, blank=True)
    volume_usd_24h = models.DecimalField(max_digits=38, decimal_places=18, null=True, blank=True)
    change_percent_24h = models.DecimalField(max_digits=38, decimal_places=18, null=True, blank=True)
    rank = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=PriceSource.choices)
    estimated = models.BooleanField(default=False)
    source_timestamp = models.DateTimeField(help_text="The instant the source stamped its answer with.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset", "-date"]
        constraints = [models.UniqueConstraint(fields=["dataset", "date"], name="uniq_market_cap_day")]
        indexes = [models.Index(fields=["dataset", "-date"], name="market_cap_latest_idx")]

    def __str__(self) -> str:
        return f"{self.dataset_id} {self.date} {self.market_cap_usd}"
