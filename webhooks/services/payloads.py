"""What receivers get: the event envelope, and event data in the JSON form receivers parse.

The envelope is the body of every delivery and the item of the polling feed, so
both show an event byte for byte the same way.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from webhooks.models import Event


def json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """Event data as stored and sent: decimals become strings, datetimes ISO 8601."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def envelope(event: Event) -> dict[str, Any]:
    """What receivers get in the body, and what the polling feed lists."""
    return {
        "id": event.public_id,
        "type": event.type,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }


def envelope_body(event: Event) -> str:
    """The envelope as the compact JSON text that is signed and sent."""
    return json.dumps(envelope(event), separators=(",", ":"))
