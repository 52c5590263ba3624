from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Account, AccountAPIKey, Role, ref_validator
from core.instants import InstantField


@extend_schema_field({"type": "string", "anyOf": [{"format": "email"}, {"maxLength": 0}]})
class _OptionalEmailField(serializers.CharField):
    """An email address, or empty when none is on file."""


class AccountOutputSerializer(serializers.ModelSerializer):
    email = _OptionalEmailField(read_only=True, help_text="An email address, or empty when none is on file.")

    class Meta:
        model = Account
        fields = ["ref", "name", "role", "email", "is_active", "is_suspended", "created_at", "updated_at"]
        read_only_fields = fields


class AccountCreateInputSerializer(serializers.Serializer):
    ref = serializers.CharField(max_length=64, validators=[ref_validator])
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=Role.choices)
    email = serializers.EmailField(required=False, allow_blank=True, default="")


class AccountUpdateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    email = serializers.EmailField(required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)
    is_suspended = serializers.BooleanField(required=False)


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.ref")
    created_at = serializers.DateTimeField(source="created")
    expires_at = serializers.DateTimeField(source="expiry_date", allow_null=True)

    class Meta:
        model = AccountAPIKey
        fields = ["prefix", "name", "account", "created_at", "expires_at", "revoked", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(help_text="The full key. It is shown once and cannot be retrieved later.")

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=50, required=False, default="default")
    expires_at = InstantField(required=False, allow_null=True, default=None)
