from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import Frequency
from core.actors import actor_label
from core.instants import InstantField
from entitlements.models import AccessRequest, AccessRequestItem, Grant, GrantChange, GrantStatus
from entitlements.selectors import grant_effective_status
from entitlements.services import MAX_TRIAL_DAYS, RULE_CANCELLED

# --- output ---------------------------------------------------------------------------


class AccessRequestItemOutputSerializer(serializers.ModelSerializer):
    rule = serializers.CharField(
        source="decision_rule",
        help_text="What decided the item: account_suspended, refusal_cooldown, auto_approve, manual_review "
        "(still pending), ops_decision or cancelled_by_requester.",
    )
    note = serializers.CharField(source="decision_note", help_text="Why, in words: the rule, the Ops note or reason.")
    grant_id = serializers.SerializerMethodField(help_text="The grant an approved item gave.")

    class Meta:
        model = AccessRequestItem
        fields = ["id", "frequency", "status", "decided_at", "decided_automatically", "rule", "note", "grant_id"]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_grant_id(self, item: AccessRequestItem) -> int | None:
        grants = list(item.grants.all())
        return grants[0].pk if grants else None


class OpsAccessRequestItemOutputSerializer(AccessRequestItemOutputSerializer):
    decided_by = serializers.SerializerMethodField(
        help_text="admin:<username>, ops:<account ref>, requester, system (the policy) or null while pending."
    )

    class Meta(AccessRequestItemOutputSerializer.Meta):
        fields = [*AccessRequestItemOutputSerializer.Meta.fields, "decided_by"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_decided_by(self, item: AccessRequestItem) -> str | None:
        if item.decided_at is None:
            return None
        if item.decision_rule == RULE_CANCELLED:
            return "requester"
        return actor_label(item.decided_by_user, item.decided_by_account)


class AccessRequestOutputSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.ref")
    dataset = serializers.CharField(source="dataset.symbol")
    items = AccessRequestItemOutputSerializer(many=True)

    class Meta:
        model = AccessRequest
        fields = ["id", "account", "dataset", "reason", "status", "created_at", "updated_at", "items"]
        read_only_fields = fields


class OpsAccessRequestOutputSerializer(AccessRequestOutputSerializer):
    account_name = serializers.CharField(source="account.name")
    account_suspended = serializers.BooleanField(source="account.is_suspended")
    items = OpsAccessRequestItemOutputSerializer(many=True)

    class Meta(AccessRequestOutputSerializer.Meta):
        fields = [*AccessRequestOutputSerializer.Meta.fields, "account_name", "account_suspended"]
        read_only_fields = fields


class EntitlementOutputSerializer(serializers.ModelSerializer):
    """A grant in force, as its quant sees it."""

    dataset = serializers.CharField(source="dataset.symbol")
    request_id = serializers.SerializerMethodField()

    class Meta:
        model = Grant
        fields = ["id", "dataset", "frequency", "starts_at", "expires_at", "request_id"]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_request_id(self, grant: Grant) -> int | None:
        return grant.item.request_id if grant.item is not None else None


class GrantChangeOutputSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = GrantChange
        fields = ["action", "at", "actor", "reason", "old_expires_at", "new_expires_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_actor(self, change: GrantChange) -> str:
        return actor_label(change.actor_user, change.actor_account)


class GrantOutputSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.ref")
    dataset = serializers.CharField(source="dataset.symbol")
    status = serializers.SerializerMethodField(
        help_text="active (in force now), expired (past expires_at, even before the sweeper ran) or revoked."
    )
    request_id = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    revoked_by = serializers.SerializerMethodField()

    class Meta:
        model = Grant
        fields = [
            "id",
            "account",
            "dataset",
            "frequency",
            "status",
            "starts_at",
            "expires_at",
            "created_at",
            "created_by",
            "note",
            "request_id",
            "item",
            "revoked_at",
            "revoked_by",
            "revoke_reason",
            "expiring_notified_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=GrantStatus.choices))
    def get_status(self, grant: Grant) -> str:
        return grant_effective_status(grant)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_request_id(self, grant: Grant) -> int | None:
        return grant.item.request_id if grant.item is not None else None

    @extend_schema_field(OpenApiTypes.STR)
    def get_created_by(self, grant: Grant) -> str:
        return actor_label(grant.created_by_user, grant.created_by_account)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_revoked_by(self, grant: Grant) -> str | None:
        return actor_label(grant.revoked_by_user, grant.revoked_by_account) if grant.revoked_at else None


class GrantDetailOutputSerializer(GrantOutputSerializer):
    changes = GrantChangeOutputSerializer(many=True)

    class Meta(GrantOutputSerializer.Meta):
        fields = [*GrantOutputSerializer.Meta.fields, "changes"]
        read_only_fields = fields


# --- input ----------------------------------------------------------------------------


def _frequencies_field(**kwargs: Any) -> serializers.ListField:
    # The service checks the list against what the dataset or request offers, naming the field.
    return serializers.ListField(
        child=serializers.CharField(max_length=8), allow_empty=True, max_length=len(Frequency.choices) * 2, **kwargs
    )


class AccessRequestCreateInputSerializer(serializers.Serializer):
    dataset = serializers.CharField(max_length=16, help_text="Dataset symbol, e.g. BTC.")
    frequencies = _frequencies_field(help_text="One or more frequencies the dataset offers.")
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class AccessRequestApproveInputSerializer(serializers.Serializer):
    frequencies = _frequencies_field(
        required=False, default=None, help_text="Items to approve; every pending item when left out."
    )
    expires_at = InstantField(required=False, allow_null=True, default=None, help_text="Trial end.")
    trial_days = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=MAX_TRIAL_DAYS,
        help_text="Trial length in days from now (instead of expires_at).",
    )
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class AccessRequestRefuseInputSerializer(serializers.Serializer):
    frequencies = _frequencies_field(
        required=False, default=None, help_text="Items to refuse; every pending item when left out."
    )
    reason = serializers.CharField(max_length=2000, help_text="Why; the quant sees it.")


class GrantCreateInputSerializer(serializers.Serializer):
    account = serializers.CharField(max_length=64, help_text="The quant's account ref.")
    dataset = serializers.CharField(max_length=16)
    frequency = serializers.ChoiceField(choices=Frequency.choices)
    expires_at = InstantField(required=False, allow_null=True, default=None)
    trial_days = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=MAX_TRIAL_DAYS
    )
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class GrantUpdateInputSerializer(serializers.Serializer):
    expires_at = InstantField(allow_null=True, help_text="New end of access; null makes it permanent.")
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class GrantRevokeInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why; the quant sees it.")
