"""Secrets shown once stay shown once: API keys are stored hashed, and answers carrying a key or a
signing secret are neither cacheable nor kept for an Idempotency-Key replay."""

import pytest

from accounts.models import AccountAPIKey
from core.models import IdempotencyRecord
from tests.security.conftest import PUBLIC_URL
from webhooks.models import Endpoint


def _no_store(response):
    assert "no-store" in response["Cache-Control"]


def _stored_bytes() -> bytes:
    return b"".join(bytes(body) for body in IdempotencyRecord.objects.values_list("body", flat=True))


def test_an_api_key_is_stored_hashed_and_its_answer_is_not_kept(ops_client, quant_client):
    url = f"/api/v1/ops/accounts/{quant_client.account.ref}/api-keys"
    first = ops_client.post(url, {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="issue-ci-key")
    assert first.status_code == 201
    _no_store(first)
    key = first.json()["key"]
    prefix, _, secret = key.partition(".")
    stored = AccountAPIKey.objects.get(prefix=prefix)
    assert secret not in stored.hashed_key
    assert stored.hashed_key.startswith("sha512$")  # one-way

    record = IdempotencyRecord.objects.get()
    assert record.status_code == 201
    assert secret.encode() not in _stored_bytes()

    repeat = ops_client.post(url, {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="issue-ci-key")
    assert repeat.status_code == 409
    assert repeat.json()["code"] == "idempotency_replay_unavailable"
    assert secret not in repeat.content.decode()
    assert AccountAPIKey.objects.filter(account=quant_client.account, name="ci").count() == 1


@pytest.mark.parametrize("action", ["create", "rotate"])
def test_a_signing_secret_is_not_kept_for_an_idempotent_replay(buyer_client, action):
    if action == "create":
        url, body = "/api/v1/webhook-endpoints", {"url": PUBLIC_URL}
    else:
        created = buyer_client.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json").json()
        url, body = f"/api/v1/webhook-endpoints/{created['id']}/rotate-secret", None
    first = buyer_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="once")
    assert first.status_code in (200, 201)
    _no_store(first)
    secret = first.json()["secret"]
    assert secret.encode() not in _stored_bytes()
    assert b"whsec_" not in _stored_bytes()

    repeat = buyer_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="once")
    assert repeat.status_code == 409
    assert repeat.json()["code"] == "idempotency_replay_unavailable"
    assert Endpoint.objects.filter(account=buyer_client.account).count() == 1
    assert Endpoint.objects.get(account=buyer_client.account).secret == secret  # not rotated twice


def test_answers_without_a_secret_are_still_replayed(seller_client, buyer_client):
    body = {"buyer": buyer_client.account.ref}
    first = seller_client.post("/api/v1/authorized-buyers", body, format="json", HTTP_IDEMPOTENCY_KEY="auth-1")
    repeat = seller_client.post("/api/v1/authorized-buyers", body, format="json", HTTP_IDEMPOTENCY_KEY="auth-1")
    assert (first.status_code, repeat.status_code) == (201, 201)
    assert repeat["Idempotent-Replayed"] == "true"
    assert repeat.content == first.content


def test_reads_never_return_a_secret(buyer_client):
    created = buyer_client.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json").json()
    listed = buyer_client.get("/api/v1/webhook-endpoints")
    detail = buyer_client.get(f"/api/v1/webhook-endpoints/{created['id']}")
    for response in (listed, detail):
        assert "whsec_" not in response.content.decode()
