"""Writes of the webhooks app, one module per job; every public name is importable from here.

- ``outbox``: events recorded in the writer's transaction (``event_publish``).
- ``payloads``: the envelope receivers get and the feed lists.
- ``endpoints``: registration, changes, secrets, enabling, disabling, deletion, fences.
- ``delivery``: fan-out, claims and leases, starting attempts and recording them.
- ``retry``: the retry schedule and redelivery.

Task modules are never imported here: work is handed to Celery by task path
(``core.enqueue.enqueue_on_commit``).
"""

from webhooks.services.delivery import (
    Claim,
    Outgoing,
    SweepResult,
    attempts_record,
    claims_endpoints,
    deliveries_claim_due,
    deliveries_defer,
    deliveries_start,
    delivery_attempt,
    delivery_claim,
    event_fanout,
    event_fanout_start,
    outgoing_post,
    webhooks_sweep,
)
from webhooks.services.endpoints import (
    SECRET_OVERLAP,
    endpoint_create,
    endpoint_delete,
    endpoint_disable,
    endpoint_enable,
    endpoint_ping,
    endpoint_rotate_secret,
    endpoint_signing_secrets,
    endpoint_update,
    recipients_fence,
    sends_settle,
)
from webhooks.services.outbox import event_publish
from webhooks.services.payloads import envelope, envelope_body, json_safe
from webhooks.services.retry import deliveries_redeliver_failed, delivery_redeliver, handed_off, retry_delay

__all__ = [
    "SECRET_OVERLAP",
    "Claim",
    "Outgoing",
    "SweepResult",
    "attempts_record",
    "claims_endpoints",
    "deliveries_claim_due",
    "deliveries_defer",
    "deliveries_redeliver_failed",
    "deliveries_start",
    "delivery_attempt",
    "delivery_claim",
    "delivery_redeliver",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_disable",
    "endpoint_enable",
    "endpoint_ping",
    "endpoint_rotate_secret",
    "endpoint_signing_secrets",
    "endpoint_update",
    "envelope",
    "envelope_body",
    "event_fanout",
    "event_fanout_start",
    "event_publish",
    "handed_off",
    "json_safe",
    "outgoing_post",
    "recipients_fence",
    "retry_delay",
    "sends_settle",
    "webhooks_sweep",
]
