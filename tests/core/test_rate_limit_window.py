"""Rate limits count in a sliding window of two counters; refused requests are not counted."""

import time

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db


def _counted(prefix: str) -> int:
    window = int(time.time() // 60)
    return sum(cache.get(f"throttle_api_key_{prefix}:{w}", 0) for w in (window - 1, window))


def test_refused_requests_are_not_counted(quant_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "3/min", "anon": "100/min"},
    }
    statuses = [quant_client.get("/api/v1/me").status_code for _ in range(6)]
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert _counted(quant_client.key.partition(".")[0]) == 3


def test_the_previous_minute_still_counts_while_it_overlaps(quant_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "10/min", "anon": "100/min"},
    }
    prefix = quant_client.key.partition(".")[0]
    window = int(time.time() // 60)
    # A million requests in the previous minute: whatever part of it still overlaps the last
    # 60 s (a millisecond's worth is enough) is over the budget of 10.
    cache.set(f"throttle_api_key_{prefix}:{window - 1}", 1_000_000, 120)
    cache.set(f"throttle_api_key_{prefix}:{window}", 0, 120)
    assert quant_client.get("/api/v1/me").status_code == 429
    response = quant_client.get("/api/v1/me")
    assert response.status_code == 429 and 1 <= int(response["Retry-After"]) <= 60
