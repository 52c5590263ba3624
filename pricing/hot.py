"""The catalog read ``core.hotpath`` answers in front of Django: the public datasets list,
from the answer ``catalog.cache`` keeps (Django builds it when none is kept)."""

from __future__ import annotations

import re

from django.conf import settings

from catalog.cache import catalog_kept
from core.hotpath import Answer, HotRequest, HotRoute
from core.renderers import json_bytes
from pricing.apis import DatasetListApi


def dataset_list(request: HotRequest) -> Answer | None:
    kept = catalog_kept("list?")
    if kept is None:
        return None
    data, etag = kept
    max_age = int(settings.CATALOG_MAX_AGE.total_seconds())
    return Answer(json_bytes(data), headers=(("ETag", etag), ("Cache-Control", f"public, max-age={max_age}")))


ROUTES = [
    HotRoute(re.compile(r"/api/v1/datasets"), DatasetListApi, roles=None, params=frozenset(), answer=dataset_list),
]
