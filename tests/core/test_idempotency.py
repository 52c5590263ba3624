import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Account
from core.idempotency import _scope, idempotency_records_purge
from core.models import IdempotencyRecord

pytestmark = pytest.mark.django_db

URL = "/api/v1/ops/accounts"


def _post(client, body, key="k-1"):
    return client.generic("POST", URL, json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


def test_replayed_key_returns_first_response_and_creates_once(ops_client):
    first = _post(ops_client, {"ref": "idem-1", "role": "quant"})
    second = _post(ops_client, {"ref": "idem-1", "role": "quant"})
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert second["Idempotent-Replayed"] == "true"
    assert Account.objects.filter(ref="idem-1").count() == 1


def test_same_key_other_body_is_422(ops_client):
    assert _post(ops_client, {"ref": "idem-2", "role": "quant"}).status_code == 201
    response = _post(ops_client, {"ref": "idem-3", "role": "quant"})
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert not Account.objects.filter(ref="idem-3").exists()


def test_concurrent_duplicate_is_409(ops_client, rf):
    body = json.dumps({"ref": "idem-4", "role": "quant"}).encode()
    request = rf.post(URL, body, content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {ops_client.key}")
    # The first request has claimed the key and is still running.
    IdempotencyRecord.objects.create(scope=_scope(request, "k-1"), fingerprint=hashlib.sha256(body).hexdigest())
    response = _post(ops_client, {"ref": "idem-4", "role": "quant"})
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_use"
    assert not Account.objects.filter(ref="idem-4").exists()


def test_key_is_scoped_to_the_caller(make_client):
    first, second = make_client("ops"), make_client("ops")
    assert _post(first, {"ref": "idem-5", "role": "quant"}).status_code == 201
    response = _post(second, {"ref": "idem-5", "role": "quant"})
    assert response.status_code == 409  # a fresh request by the other caller, which conflicts on the ref
    assert response.json()["code"] == "account_exists"


def test_without_key_requests_are_not_deduplicated(ops_client):
    ops_client.post(URL, {"ref": "idem-6", "role": "quant"})
    assert ops_client.post(URL, {"ref": "idem-6", "role": "quant"}).status_code == 409


def test_old_records_are_purged(ops_client):
    _post(ops_client, {"ref": "idem-7", "role": "quant"})
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_records_purge() == 1
    assert _post(ops_client, {"ref": "idem-7", "role": "quant"}).status_code == 409


def test_claim_of_a_request_that_never_answered_is_released(ops_client, rf, settings):
    body = json.dumps({"ref": "idem-8", "role": "quant"}).encode()
    request = rf.post(URL, body, content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {ops_client.key}")
    # A process died mid-request long ago: its claim was never completed.
    IdempotencyRecord.objects.create(
        scope=_scope(request, "k-1"),
        fingerprint=hashlib.sha256(body).hexdigest(),
        created_at=timezone.now() - settings.IDEMPOTENCY_ABANDONED_AFTER - timedelta(seconds=1),
    )
    response = _post(ops_client, {"ref": "idem-8", "role": "quant"})
    assert response.status_code == 201
    assert Account.objects.filter(ref="idem-8").exists()
    assert _post(ops_client, {"ref": "idem-8", "role": "quant"})["Idempotent-Replayed"] == "true"
