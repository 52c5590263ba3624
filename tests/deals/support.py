"""Helpers shared by the deals tests."""

import json
from typing import Any

DEALS = "/api/v1/deals"
AUTHORIZED_BUYERS = "/api/v1/authorized-buyers"
AUTHORIZED_SELLERS = "/api/v1/authorized-sellers"


def deal_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Summer bundle",
        "currency": "gbp",
        "total_price": "100.00",
        "discount": {"type": "flat", "amount": "10"},
        "status": "available",
        "items": [
            {"id": "sku-1", "name": "Bundle", "price": "60.00"},
            {"id": "sku-2", "name": "Extra", "price": "40"},
        ],
    }
    body.update(overrides)
    return body


def raw_json(client: Any, method: str, url: str, text: str, **extra: Any) -> Any:
    """Send ``text`` as the body unchanged, so JSON numbers reach the server as numbers."""
    return getattr(client, method)(url, data=text, content_type="application/json", **extra)


def dumps(value: Any) -> str:
    return json.dumps(value)
