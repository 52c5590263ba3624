"""The event types endpoints may subscribe to (names only: the webhooks app knows no domain)."""

PING = "webhook.ping"
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
ALL = "*"

EVENT_TYPES: dict[str, str] = {
    "access_request.created": "A quant asked for access to a dataset (sent to Ops).",
    "access_request.decided": "Items of an access request were approved or refused (sent to the quant).",
    "access_grant.created": "Access to a dataset frequency was granted.",
    "access_grant.updated": "A grant's end moved: extended, shortened or made permanent (sent to the quant).",
    "access_grant.revoked": "A grant was revoked.",
    "access_grant.expired": "A time-limited grant ended.",
    "access_grant.expiring": "A time-limited grant ends soon.",
    "deal.created": "A seller posted a deal (sent to the buyers the seller authorised).",
    "deal.updated": "A deal changed; `changes` maps each field to [old, new].",
    PING: "A test event sent by the ping endpoint, to that endpoint only.",
    ENDPOINT_DISABLED: "One of your endpoints was disabled (sent to your other endpoints and your feed).",
}


def subscribed(event_types: list[str], event_type: str) -> bool:
    """Does an endpoint subscribed to ``event_types`` receive ``event_type``? Empty or "*" means all."""
    return not event_types or ALL in event_types or event_type in event_types
