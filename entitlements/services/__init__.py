"""Writes of the entitlements context: access requests, their decisions, grants and their ends.

Every service is atomic, takes the actor (an Ops account, an admin user, or None for
the system), writes its audit rows and outbox events in the same transaction, and
locks the rows it decides on so two Ops deciding at once cannot both win.

One module per seam: ``access_requests`` (ask, decide, withdraw, the Ops email),
``grants`` (give, move the end, revoke), ``expiry`` (trials that end and the notice
before), and ``common`` (rule names, event payloads, deciding items under lock).
"""

from entitlements.services.access_requests import (
    access_request_approve,
    access_request_cancel,
    access_request_create,
    access_request_email_ops,
    access_request_refuse,
)
from entitlements.services.common import (
    MAX_TRIAL_DAYS,
    RULE_CANCELLED,
    RULE_OPS_DECISION,
    access_request_payload,
    grant_payload,
)
from entitlements.services.expiry import grants_expire_due, grants_notify_expiring
from entitlements.services.grants import grant_create, grant_expiry_resolve, grant_revoke, grant_update_expiry

__all__ = [
    "MAX_TRIAL_DAYS",
    "RULE_CANCELLED",
    "RULE_OPS_DECISION",
    "access_request_approve",
    "access_request_cancel",
    "access_request_create",
    "access_request_email_ops",
    "access_request_payload",
    "access_request_refuse",
    "grant_create",
    "grant_expiry_resolve",
    "grant_payload",
    "grant_revoke",
    "grant_update_expiry",
    "grants_expire_due",
    "grants_notify_expiring",
]
