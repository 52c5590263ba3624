from typing import Any

from django import template

from entitlements.selectors import access_requests_pending

register = template.Library()


@register.simple_tag
def access_request_queue(limit: int = 10) -> dict[str, Any]:
    """The pending queue for the admin index: how many wait, and the oldest few."""
    pending = access_requests_pending()
    return {"count": pending.count(), "oldest": list(pending.prefetch_related("items")[:limit])}
