"""API-key authentication on the hot path: the per-process key cache and the last-used stamp."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services
from accounts.models import AccountAPIKey
from accounts.selectors import api_key_cache_forget
from tests.support import wait_until

pytestmark = pytest.mark.django_db
ME = "/api/v1/me"


def _key_writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "accounts_accountapikey"')]


def test_last_used_is_written_at_most_once_a_minute(quant_client, settings):
    settings.API_KEY_CACHE_TTL = timedelta(
        seconds=0
    )  # every request reads the row: the once-a-minute rule holds on its own
    api_key = AccountAPIKey.objects.get(account=quant_client.account)
    assert api_key.last_used_at is None

    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert quant_client.get(ME).status_code == 200
    assert len(_key_writes(queries)) == 1
    api_key.refresh_from_db()
    first_use = api_key.last_used_at
    assert first_use is not None and timezone.now() - first_use < timedelta(seconds=30)

    # A minute later (moved back in the row, as another process would see it) the next use is written again.
    AccountAPIKey.objects.filter(pk=api_key.pk).update(last_used_at=first_use - timedelta(seconds=61))
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert quant_client.get(ME).status_code == 200
    assert len(_key_writes(queries)) == 1
    api_key.refresh_from_db()
    assert api_key.last_used_at > first_use


def test_last_used_is_not_rewritten_by_a_process_with_a_stale_copy(quant_client):
    api_key = AccountAPIKey.objects.get(account=quant_client.account)
    now = timezone.now()
    assert services.api_key_mark_used(api_key=api_key, now=now) is True
    stale = AccountAPIKey.objects.get(pk=api_key.pk)
    stale.last_used_at = None  # what another process read before the write above
    assert services.api_key_mark_used(api_key=stale, now=now + timedelta(seconds=5)) is False
    api_key.refresh_from_db()
    assert api_key.last_used_at == now


def test_a_cached_key_costs_no_query(quant_client, settings):
    settings.API_KEY_CACHE_TTL = timedelta(seconds=3600)
    api_key_cache_forget()
    assert quant_client.get(ME).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert quant_client.get(ME).status_code == 200
    assert not [q for q in queries.captured_queries if "accounts_accountapikey" in q["sql"]]


def test_a_cached_key_still_needs_its_secret(quant_client, anon_client, settings):
    settings.API_KEY_CACHE_TTL = timedelta(seconds=3600)
    assert quant_client.get(ME).status_code == 200
    prefix = quant_client.key.partition(".")[0]
    response = anon_client.get(ME, HTTP_AUTHORIZATION=f"Api-Key {prefix}.wrong-secret-0123456789abcdef")
    assert response.status_code == 401


def test_revoked_here_is_refused_at_once(quant_client, settings):
    settings.API_KEY_CACHE_TTL = timedelta(seconds=3600)
    assert quant_client.get(ME).status_code == 200
    services.api_key_revoke(api_key=AccountAPIKey.objects.get(account=quant_client.account))
    assert quant_client.get(ME).status_code == 401


def test_deactivated_here_is_refused_at_once(quant_client, settings):
    settings.API_KEY_CACHE_TTL = timedelta(seconds=3600)
    assert quant_client.get(ME).status_code == 200
    services.account_update(account=quant_client.account, is_active=False, actor=None)
    assert quant_client.get(ME).status_code == 401


def test_revoked_by_another_process_is_refused_within_a_second(quant_client, settings):
    settings.API_KEY_CACHE_TTL = timedelta(seconds=1.0)
    assert quant_client.get(ME).status_code == 200
    # Another process revokes: a plain UPDATE, nothing tells this process.
    revoked_at = time.monotonic()
    AccountAPIKey.objects.filter(account=quant_client.account).update(revoked=True, revoked_at=timezone.now())
    wait_until(lambda: quant_client.get(ME).status_code == 401, 3.0, "a revoked key was still accepted 3 s later")
    assert time.monotonic() - revoked_at <= 1.0 + 0.5  # the cache lifetime, plus a request's time
