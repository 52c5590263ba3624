import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def money_field(**options: Any) -> models.DecimalField:
    """Up to 999 999 999 999 999 with 4 decimals: enough for every ISO 4217 minor unit."""
    return models.DecimalField(max_digits=19, decimal_places=4, **options)


class DealStatus(models.TextChoices):
    AVAILABLE = "available", "Available"
    SOLD = "sold", "Sold"


class DiscountType(models.TextChoices):
    FLAT = "flat", "Flat"
    PERCENTAGE = "percentage", "Percentage"


class Deal(models.Model):
    """A seller's offer of one or more items at a total price, optionally discounted.

    ``final_price`` is derived from the total and the discount by the services and
    stored so lists can filter and sort on it. ``version`` grows by one on every
    real change; it is what ETags and ``If-Match`` compare.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    seller = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="deals",
        limit_choices_to={"role": "seller"},
    )
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    total_price = money_field()
    discount_type = models.CharField(max_length=16, choices=DiscountType.choices, blank=True)
    discount_amount = money_field(null=True, blank=True)
    final_price = money_field()
    status = models.CharField(max_length=16, choices=DealStatus.choices, default=DealStatus.AVAILABLE)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["seller", "-updated_at", "-id"], name="deal_seller_updated_idx"),
            models.Index(fields=["seller", "status"], name="deal_seller_status_idx"),
            models.Index(fields=["-updated_at", "-id"], name="deal_updated_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_type="", discount_amount__isnull=True)
                | (~Q(discount_type="") & Q(discount_amount__isnull=False)),
                name="deal_discount_complete",
            ),
            models.CheckConstraint(condition=Q(total_price__gte=0), name="deal_total_not_negative"),
            models.CheckConstraint(
                condition=Q(final_price__gte=0) & Q(final_price__lte=models.F("total_price")),
                name="deal_final_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"


class DealItem(models.Model):
    """One item of a deal; ``ref`` is the seller's own id for it (``items[].id`` on the wire)."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    ref = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    price = money_field()

    class Meta:
        ordering = ["deal", "position"]
        constraints = [
            models.UniqueConstraint(fields=["deal", "ref"], name="uniq_deal_item_ref"),
            models.CheckConstraint(condition=Q(price__gte=0), name="deal_item_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.ref} {self.name}"


class BuyerAuthorization(models.Model):
    """A seller lets a buyer see its deals and receive their events."""

    seller = models.ForeignKey(
        "accounts.Account",
        on_delete=models.CASCADE,
        related_name="buyer_authorizations",
        limit_choices_to={"role": "seller"},
    )
    buyer = models.ForeignKey(
        "accounts.Account",
        on_delete=models.CASCADE,
        related_name="seller_authorizations",
        limit_choices_to={"role": "buyer"},
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "buyer authorisation"
        constraints = [models.UniqueConstraint(fields=["seller", "buyer"], name="uniq_seller_buyer")]
        indexes = [models.Index(fields=["buyer", "seller"], name="authorization_buyer_idx")]

    def __str__(self) -> str:
        return f"{self.seller_id} -> {self.buyer_id}"
