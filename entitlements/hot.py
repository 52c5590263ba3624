"""The entitlements read ``core.hotpath`` answers in front of Django: the first page of a
quant's entitlements, from the statement the view reads it with."""

from __future__ import annotations

import re

from accounts.permissions import IsQuant
from core.hotpath import Answer, HotRequest, HotRoute
from core.pagination import first_page_next_link
from core.renderers import json_bytes
from entitlements import selectors
from entitlements.apis import EntitlementListApi, entitlement_wire_rows


def entitlement_list_first_page(request: HotRequest) -> Answer | None:
    size = request.page_size()
    with request.cursor() as cursor:
        rows = selectors.entitlement_rows_newest_first(account_id=request.caller.pk, limit=size + 1, cursor=cursor)
    next_link = first_page_next_link(rows, page_size=size, field="id", url=request.absolute_uri())
    body = {"next": next_link, "previous": None, "results": entitlement_wire_rows(rows[:size])}
    return Answer(json_bytes(body))


ROUTES = [
    HotRoute(
        re.compile(r"/api/v1/entitlements"),
        EntitlementListApi,
        roles=IsQuant.roles,  # type: ignore[attr-defined]
        params=frozenset({"page_size"}),
        answer=entitlement_list_first_page,
    ),
]
