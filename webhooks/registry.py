"""How domain apps tell the webhooks app who may still receive an event.

The webhooks app never imports a domain app. A domain app that can take an
audience away after an event was published (a seller de-authorising a buyer)
registers a check for its event-type prefix; fan-out, deliveries and the
polling feed consult it at send time, so queued retries stop at once.

A check answers for many accounts at once, so fanning an event out to
thousands of recipients costs one query, not one per recipient.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

AudienceCheck = Callable[[str, dict[str, Any], Collection[int]], Collection[int]]
"""(event_type, event data, recipient account ids) -> the ids that may still receive it."""

_checks: dict[str, AudienceCheck] = {}


def audience_check_register(prefix: str, check: AudienceCheck) -> None:
    _checks[prefix] = check


def audience_filter(event_type: str, data: dict[str, Any], account_ids: Collection[int]) -> set[int]:
    """The subset of ``account_ids`` that may still receive this event."""
    for prefix, check in _checks.items():
        if event_type.startswith(prefix):
            return set(check(event_type, data, account_ids)) if account_ids else set()
    return set(account_ids)


def audience_allows(event_type: str, data: dict[str, Any], account_id: int) -> bool:
    return account_id in audience_filter(event_type, data, [account_id])
