"""Every decision, grant change, API key and webhook endpoint change shows in its object's admin History,
with who, when and why, whether it was made in the admin or over the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AccountAPIKey, Role
from catalog.models import Dataset
from entitlements import services
from entitlements.models import AccessRequest, Grant
from tests.factories import AccountFactory
from tests.history import admin_history as history
from webhooks.models import Endpoint

pytestmark = pytest.mark.django_db


def test_decisions_in_the_admin_and_over_the_api_show_in_the_request_history(
    admin_client, admin_user, quant_client, ops_client, catalog
):
    btc = Dataset.objects.get(symbol="BTC")
    request = services.access_request_create(
        account=quant_client.account, dataset=btc, frequencies=["1h", "1d"], reason="Backtest"
    )
    item_1h = request.items.get(frequency="1h")
    admin_client.post(
        f"/admin/entitlements/accessrequest/{request.pk}/decide/",
        {"item": item_1h.pk, "decision": "refuse", "reason": "Hourly is for funds only"},
    )
    answer = ops_client.post(
        f"/api/v1/ops/access-requests/{request.pk}/approve", {"frequencies": ["1d"], "note": "Paid invoice 42"}
    )
    assert answer.status_code == 200, answer.content
    rows = history(admin_client, "entitlements_accessrequest", request.pk)
    assert [(row[1], row[2]) for row in rows] == [
        (f"quant:{quant_client.account.ref}", "requested"),
        (f"admin:{admin_user.username}", "refused"),
        (f"ops:{ops_client.account.ref}", "approved"),
    ]
    assert rows[1][3:] == ["Refused BTC 1h.", "Hourly is for funds only"]
    assert rows[2][3:] == ["Approved BTC 1d.", "Paid invoice 42"]
    assert all(row[0].startswith(f"{timezone.now():%Y-%m-%d}") for row in rows)


def test_grant_changes_show_in_the_grant_history(admin_client, admin_user, quant_client, ops_client, catalog):
    grant = ops_client.post(
        "/api/v1/ops/grants",
        {"account": quant_client.account.ref, "dataset": "BTC", "frequency": "1d", "trial_days": 2, "note": "Trial"},
    ).json()
    later = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    ops_client.patch(f"/api/v1/ops/grants/{grant['id']}", {"expires_at": later.isoformat(), "reason": "Asked nicely"})
    admin_client.post(
        "/admin/entitlements/grant/",
        {"action": "revoke_grants", "_selected_action": [grant["id"]], "apply": "1", "reason": "Chargeback"},
    )
    assert Grant.objects.get(pk=grant["id"]).status == "revoked"
    rows = history(admin_client, "entitlements_grant", grant["id"])
    ops = f"ops:{ops_client.account.ref}"
    assert [(row[1], row[2], row[4]) for row in rows] == [
        (ops, "granted", "Trial"),
        (ops, "extended", "Asked nicely"),
        (f"admin:{admin_user.username}", "revoked", "Chargeback"),
    ]
    assert f"to {later:%Y-%m-%d %H:%M} UTC" in rows[1][3]


def test_api_keys_created_and_revoked_show_in_the_key_history(admin_client, admin_user, ops_client):
    quant = AccountFactory(role=Role.QUANT)
    created = ops_client.post(f"/api/v1/ops/accounts/{quant.ref}/api-keys", {"name": "laptop"})
    assert created.status_code == 201
    api_key = AccountAPIKey.objects.get(account=quant)
    admin_client.post("/admin/accounts/accountapikey/", {"action": "revoke_selected", "_selected_action": [api_key.pk]})
    rows = history(admin_client, "accounts_accountapikey", api_key.pk)
    assert [(row[1], row[2]) for row in rows] == [
        (f"ops:{ops_client.account.ref}", "created"),
        (f"admin:{admin_user.username}", "revoked"),
    ]
    assert api_key.prefix in rows[0][3]


def test_webhook_endpoint_changes_show_in_the_endpoint_history(admin_client, admin_user, buyer_client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    endpoint = buyer_client.post("/api/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/a"}).json()
    buyer_client.patch(f"/api/v1/webhook-endpoints/{endpoint['id']}", {"url": "http://127.0.0.1:9/b"})
    buyer_client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
    admin_client.post(
        "/admin/webhooks/endpoint/",
        {"action": "disable_selected", "_selected_action": [endpoint["id"]], "apply": "1", "reason": "Abuse report"},
    )
    admin_client.post(f"/admin/webhooks/endpoint/{endpoint['id']}/change/", {"description": "checked by ops"})
    assert Endpoint.objects.get(pk=endpoint["id"]).description == "checked by ops"
    rows = history(admin_client, "webhooks_endpoint", endpoint["id"])
    buyer, admin = f"buyer:{buyer_client.account.ref}", f"admin:{admin_user.username}"
    assert [(row[1], row[2]) for row in rows] == [
        (buyer, "created"),
        (buyer, "changed"),
        (buyer, "secret rotated"),
        (admin, "disabled"),
        (admin, "changed"),
    ]
    assert "http://127.0.0.1:9/b" in rows[1][3]
    assert rows[3][4] == "Abuse report"


def test_audit_trail_is_read_only_in_the_admin(admin_client, quant_client, catalog):
    services.access_request_create(
        account=quant_client.account, dataset=Dataset.objects.get(symbol="ETH"), frequencies=["1d"]
    )
    request = AccessRequest.objects.get()
    page = admin_client.get("/admin/core/auditentry/").content.decode()
    assert str(request) in page
    assert admin_client.get("/admin/core/auditentry/add/").status_code == 403
