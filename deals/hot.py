"""The deals reads ``core.hotpath`` answers in front of Django: a first page of the deals list
and one deal, from the selectors and wire functions the views use."""

from __future__ import annotations

import re
from uuid import UUID

from accounts.permissions import IsSellerOrBuyer
from core.errors import NotFound
from core.hotpath import Answer, HotRequest, HotRoute
from core.pagination import first_page_next_link
from core.renderers import json_bytes
from deals import selectors
from deals.apis import DealDetailApi, DealListCreateApi
from deals.wire import deal_row_etag, deal_wire_rows


def deal_list_first_page(request: HotRequest) -> Answer | None:
    size = request.page_size()
    with request.cursor() as cursor:
        rows = selectors.deal_rows_newest_first(account=request.caller, limit=size + 1, cursor=cursor)
        page = rows[:size]
        items = selectors.deal_items_by_deal(deal_ids=[row["id"] for row in page], cursor=cursor)
    next_link = first_page_next_link(rows, page_size=size, field="updated_at", url=request.absolute_uri())
    return Answer(json_bytes({"next": next_link, "previous": None, "results": deal_wire_rows(page, items)}))


def deal_detail(request: HotRequest, deal_id: str) -> Answer | None:
    with request.cursor() as cursor:
        try:
            row = selectors.deal_row_get_visible(account=request.caller, deal_id=UUID(deal_id), cursor=cursor)
        except NotFound:
            return None
        items = selectors.deal_items_by_deal(deal_ids=[row["id"]], cursor=cursor)
    return Answer(json_bytes(deal_wire_rows([row], items)[0]), headers=(("ETag", deal_row_etag(row)),))


# Django's <uuid:...> path converter
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

ROUTES = [
    HotRoute(
        re.compile(r"/api/v1/deals"),
        DealListCreateApi,
        roles=IsSellerOrBuyer.roles,  # type: ignore[attr-defined]
        params=frozenset({"page_size"}),
        answer=deal_list_first_page,
    ),
    HotRoute(
        re.compile(rf"/api/v1/deals/({_UUID})"),
        DealDetailApi,
        roles=IsSellerOrBuyer.roles,  # type: ignore[attr-defined]
        params=frozenset(),
        answer=deal_detail,
    ),
]
