from django.db import models


class Frequency(models.TextChoices):
    HOUR = "1h", "1 hour"
    DAY = "1d", "1 day"
    MONTH = "1mo", "1 month"


class ApprovalMode(models.TextChoices):
    MANUAL = "manual", "Manual (Ops decide)"
    AUTO_APPROVE = "auto_approve", "Auto-approve"


class Dataset(models.Model):
    """The pricing history of one crypto asset, sold per frequency."""

    symbol = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=100)
    coincap_id = models.CharField(max_length=64, help_text="The asset's id at CoinCap, e.g. 'bitcoin'.", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return f"{self.name} ({self.symbol})"


class DatasetFrequency(models.Model):
    """One frequency a dataset is offered at, with how access requests for it are decided."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="frequencies")
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    approval_mode = models.CharField(max_length=16, choices=ApprovalMode.choices, default=ApprovalMode.MANUAL)

    class Meta:
        ordering = ["dataset__symbol", "frequency"]
        verbose_name_plural = "dataset frequencies"
        constraints = [
            models.UniqueConstraint(fields=["dataset", "frequency"], name="uniq_dataset_frequency"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.symbol} {self.frequency}"
