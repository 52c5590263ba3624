"""The public catalog's answers, kept per process for ``CATALOG_CACHE_TTL``.

The catalog changes a few times a day (an approval mode, the daily market cap) and is read
by everyone, so each process keeps the answer it built, with its ETag, for a few seconds.
A change saved in this process drops it at once; other processes see it within that time.
Nothing read inside a transaction is kept, since it may not be committed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.db import connection

_answers: dict[str, tuple[float, Any, str]] = {}
_MAX = 1_000


def catalog_kept(key: str) -> tuple[Any, str] | None:
    """The data and ETag kept for ``key``, if still fresh; never builds."""
    kept = _answers.get(key)
    if kept is None or time.monotonic() - kept[0] >= settings.CATALOG_CACHE_TTL.total_seconds():
        return None
    return kept[1], kept[2]


def catalog_answer(key: str, build: Callable[[], Any]) -> tuple[Any, str]:
    """The data for ``key`` (built by ``build`` when not kept or too old) and its strong ETag."""
    kept = catalog_kept(key)
    if kept is not None:
        return kept
    ttl = settings.CATALOG_CACHE_TTL.total_seconds()
    now = time.monotonic()
    data = build()
    etag = '"' + hashlib.sha256(orjson.dumps(data)).hexdigest()[:32] + '"'
    if ttl > 0 and not connection.in_atomic_block:
        if len(_answers) >= _MAX:
            _answers.clear()
        _answers[key] = (now, data, etag)
    return data, etag


def catalog_cache_forget(*args: Any, **kwargs: Any) -> None:
    """Drop every kept answer (connected to saves of datasets, frequencies and market caps)."""
    _answers.clear()
