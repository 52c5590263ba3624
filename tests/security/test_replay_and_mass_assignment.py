"""Replays of signed webhooks are refused by a Standard Webhooks verifier; fields a caller may not
set are ignored or refused, whatever the body says."""

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from accounts.models import Account
from entitlements.models import AccessRequest
from webhooks import services as webhook_services
from webhooks.models import Endpoint

# --- replay -------------------------------------------------------------------------------------


def test_a_replayed_delivery_with_an_old_or_refreshed_timestamp_does_not_verify(
    buyer_client, webhook_receiver, deliver_now
):
    endpoint = buyer_client.post("/api/v1/webhook-endpoints", {"url": webhook_receiver.url}, format="json").json()
    webhook_services.event_publish(
        event_type="access_request.created", data={"n": 1}, recipients=[buyer_client.account]
    )
    deliver_now()
    (request,) = webhook_receiver.wait_for(1)
    verifier = Webhook(endpoint["secret"])
    assert verifier.verify(request.body, request.headers)["data"] == {"n": 1}

    # Captured and sent again ten minutes later: outside the verifier's tolerance.
    stale = {**request.headers, "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) - 600)}
    with pytest.raises(WebhookVerificationError):
        verifier.verify(request.body, stale)
    # ... and a refreshed timestamp breaks the signature, which covers it.
    refreshed = {**request.headers, "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) + 1)}
    with pytest.raises(WebhookVerificationError):
        verifier.verify(request.body, refreshed)


# --- mass assignment ----------------------------------------------------------------------------


def test_ops_cannot_change_an_accounts_ref_or_role(ops_client, quant_client):
    ref = quant_client.account.ref
    response = ops_client.patch(
        f"/api/v1/ops/accounts/{ref}", {"name": "Renamed", "role": "ops", "ref": "hijacked"}, format="json"
    )
    assert response.status_code == 200
    account = Account.objects.get(pk=quant_client.account.pk)
    assert (account.ref, account.role, account.name) == (ref, "quant", "Renamed")


def test_an_endpoint_cannot_be_registered_with_a_chosen_secret_or_for_another_account(buyer_client, make_client):
    victim = make_client("buyer")
    response = buyer_client.post(
        "/api/v1/webhook-endpoints",
        {
            "url": "https://93.184.215.14/hooks",
            "secret": "whsec_Y2hvc2VuLWJ5LXRoZS1jYWxsZXItMTIzNDU2Nzg5MA==",
            "account": victim.account.ref,
            "enabled": False,
            "failing_since": "2000-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 201
    endpoint = Endpoint.objects.get(pk=response.json()["id"])
    assert endpoint.account_id == buyer_client.account.pk
    assert endpoint.secret != "whsec_Y2hvc2VuLWJ5LXRoZS1jYWxsZXItMTIzNDU2Nzg5MA=="
    assert endpoint.enabled is True
    assert not Endpoint.objects.filter(account=victim.account).exists()


def test_a_quant_cannot_approve_their_own_request_or_file_it_for_someone_else(quant_client, make_client, catalog):
    other = make_client("quant")
    response = quant_client.post(
        "/api/v1/access-requests",
        {"dataset": "BTC", "frequencies": ["1h"], "status": "approved", "account": other.account.ref},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending"
    assert [item["status"] for item in body["items"]] == ["pending"]
    request = AccessRequest.objects.get(pk=body["id"])
    assert request.account_id == quant_client.account.pk
    assert quant_client.get("/api/v1/entitlements").json()["results"] == []


def test_a_deal_patch_cannot_set_its_version_id_or_seller(seller_client, make_client):
    other = make_client("seller")
    created = seller_client.post(
        "/api/v1/deals",
        {"name": "A", "currency": "GBP", "items": [{"id": "a", "name": "A", "price": "10.00"}]},
        format="json",
    ).json()
    response = seller_client.patch(
        f"/api/v1/deals/{created['id']}",
        {"name": "B", "version": 99, "id": "00000000-0000-0000-0000-000000000000"},
        format="json",
    )
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["version"]) == (created["id"], created["version"] + 1)
    moved = seller_client.patch(f"/api/v1/deals/{created['id']}", {"seller": other.account.ref}, format="json")
    assert moved.status_code == 400
    assert "seller" in moved.json()["errors"]
