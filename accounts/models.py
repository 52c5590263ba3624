from django.core.validators import RegexValidator
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

ref_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
    "A ref is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
)


class Role(models.TextChoices):
    QUANT = "quant", "Quant"
    OPS = "ops", "Ops"
    SELLER = "seller", "Seller"
    BUYER = "buyer", "Buyer"


class Account(models.Model):
    """Someone who calls the API: identified by a stable public ``ref``."""

    ref = models.CharField(max_length=64, unique=True, validators=[ref_validator])
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=16, choices=Role.choices)
    email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True, help_text="Inactive accounts cannot authenticate at all.")
    is_suspended = models.BooleanField(
        default=False,
        help_text="Suspended accounts can still read, but their access requests are refused automatically.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ref"]
        indexes = [models.Index(fields=["role", "ref"])]
        permissions = [("change_account_role", "Can give an account another role, or create an Ops account")]

    def __str__(self) -> str:
        return f"{self.ref} ({self.role})"

    # Accounts stand in for request.user in API views.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False


class AccountAPIKey(AbstractAPIKey):
    """A hashed API key belonging to one account; only its prefix is stored in clear."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        permissions = [("add_ops_api_key", "Can create API keys for Ops accounts")]
