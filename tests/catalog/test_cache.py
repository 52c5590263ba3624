"""The public catalog is cacheable: ETag, Cache-Control, 304; kept per process for a few seconds."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.cache import catalog_cache_forget
from catalog.models import DatasetFrequency
from demo.seed import catalog_seed

DATASETS = "/api/v1/datasets"


@pytest.mark.parametrize("path", [DATASETS, "/api/v1/datasets/btc"])
def test_catalog_answers_carry_etag_and_cache_control_and_304(anon_client, catalog, path, settings):
    first = anon_client.get(path)
    assert first.status_code == 200
    etag = first["ETag"]
    assert (
        etag.startswith('"')
        and first["Cache-Control"] == f"public, max-age={int(settings.CATALOG_MAX_AGE.total_seconds())}"
    )
    again = anon_client.get(path, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    assert anon_client.get(path, HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_etag_changes_with_the_catalog(anon_client, catalog):
    etag = anon_client.get(DATASETS)["ETag"]
    DatasetFrequency.objects.filter(dataset__symbol="BTC", frequency="1h").update(approval_mode="auto")
    changed = anon_client.get(DATASETS, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


@pytest.mark.django_db(transaction=True)
def test_committed_catalog_is_kept_and_a_change_here_shows_at_once(anon_client, settings):
    settings.CATALOG_CACHE_TTL = timedelta(hours=1)
    catalog_cache_forget()
    catalog_seed()
    assert anon_client.get(DATASETS).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        kept = anon_client.get(DATASETS)
    assert kept.status_code == 200 and len(queries) == 0

    # Saved in this process: the next answer is rebuilt.
    frequency = DatasetFrequency.objects.get(dataset__symbol="BTC", frequency="1h")
    frequency.approval_mode = "auto"
    frequency.save()
    modes = {f["frequency"]: f["approval_mode"] for f in anon_client.get(DATASETS).json()["results"][0]["frequencies"]}
    assert modes["1h"] == "auto"

    # Another process's change (a plain UPDATE) shows once this process's copy is older than the setting.
    DatasetFrequency.objects.filter(pk=frequency.pk).update(approval_mode="manual")
    assert anon_client.get(DATASETS).json()["results"][0]["frequencies"][0]["approval_mode"] == "auto"
    settings.CATALOG_CACHE_TTL = timedelta(0)
    assert anon_client.get(DATASETS).json()["results"][0]["frequencies"][0]["approval_mode"] == "manual"
    catalog_cache_forget()
