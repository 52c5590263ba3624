"""How domain apps tell the webhooks app who may still receive an event.

The webhooks app never imports a domain app. A domain app that can take an
audience away after an event was published (a seller de-authorising a buyer)
registers a check for its event-type prefix; deliveries and the polling feed
consult it at send time, so queued retries stop at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

AudienceCheck = Callable[[str, dict[str, Any], int], bool]
"""(event_type, event data, recipient account id) -> may this account still receive it?"""

_checks: dict[str, AudienceCheck] = {}


def audience_check_register(prefix: str, check: AudienceCheck) -> None:
    _checks[prefix] = check


def audience_allows(event_type: str, data: dict[str, Any], account_id: int) -> bool:
    for prefix, check in _checks.items():
        if event_type.startswith(prefix):
            return check(event_type, data, account_id)
    return True
