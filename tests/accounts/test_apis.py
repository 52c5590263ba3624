from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts import services
from accounts.models import Account, AccountAPIKey, Role

pytestmark = pytest.mark.django_db

ME = "/api/v1/me"


def test_no_key_is_401_with_problem_body(anon_client):
    response = anon_client.get(ME)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize(
    "header",
    ["Api-Key nope.nope", "Api-Key ", "Api-Key a b", "Api-Key XXXXXXXX.wrongsecretwrongsecretwrongsecret"],
)
def test_unknown_or_malformed_key_is_401(anon_client, header):
    anon_client.credentials(HTTP_AUTHORIZATION=header)
    response = anon_client.get(ME)
    assert response.status_code == 401
    assert response.json()["code"] in {"authentication_failed", "not_authenticated"}


def test_right_prefix_wrong_secret_is_401(quant_client, anon_client):
    prefix = quant_client.key.split(".")[0]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {prefix}.{'x' * 32}")
    assert anon_client.get(ME).status_code == 401


def test_valid_key_identifies_the_account(quant_client):
    response = quant_client.get(ME)
    assert response.status_code == 200
    assert response.json()["ref"] == quant_client.account.ref
    assert response.json()["role"] == "quant"


def test_revoked_key_is_401(quant_client):
    services.api_key_revoke(api_key=AccountAPIKey.objects.get(account=quant_client.account))
    response = quant_client.get(ME)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_expired_key_is_401(quant_client):
    AccountAPIKey.objects.filter(account=quant_client.account).update(expiry_date=timezone.now() - timedelta(seconds=1))
    response = quant_client.get(ME)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_inactive_account_is_401(quant_client):
    Account.objects.filter(pk=quant_client.account.pk).update(is_active=False)
    response = quant_client.get(ME)
    assert response.status_code == 401
    assert "inactive" in response.json()["detail"]


@pytest.mark.parametrize("role", [Role.QUANT, Role.SELLER, Role.BUYER])
def test_non_ops_roles_get_403_on_ops_api(make_client, role):
    response = make_client(role).get("/api/v1/ops/accounts")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_ops_creates_account_and_key_then_key_works_once_shown(ops_client, anon_client):
    response = ops_client.post(
        "/api/v1/ops/accounts", {"ref": "acme-quant", "name": "Acme", "role": "quant", "email": "q@acme.test"}
    )
    assert response.status_code == 201, response.content
    assert response.json()["ref"] == "acme-quant"

    response = ops_client.post("/api/v1/ops/accounts/acme-quant/api-keys", {"name": "laptop"})
    assert response.status_code == 201, response.content
    body = response.json()
    key = body["key"]
    assert key.startswith(body["prefix"] + ".")

    listing = ops_client.get("/api/v1/ops/accounts/acme-quant/api-keys").json()
    assert [k["prefix"] for k in listing] == [body["prefix"]]
    assert "key" not in listing[0]
    assert not AccountAPIKey.objects.filter(hashed_key__contains=key.split(".")[1]).exists()

    anon_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert anon_client.get(ME).json()["ref"] == "acme-quant"

    revoke = ops_client.post(f"/api/v1/ops/accounts/acme-quant/api-keys/{body['prefix']}/revoke")
    assert revoke.status_code == 200
    assert revoke.json()["revoked"] is True
    assert anon_client.get(ME).status_code == 401


def test_ops_account_create_validation(ops_client):
    response = ops_client.post("/api/v1/ops/accounts", {"ref": "bad ref!", "role": "pilot"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert set(body["errors"]) == {"ref", "role"}


def test_ops_account_create_duplicate_is_409(ops_client):
    payload = {"ref": "dup", "role": "buyer"}
    assert ops_client.post("/api/v1/ops/accounts", payload).status_code == 201
    response = ops_client.post("/api/v1/ops/accounts", payload)
    assert response.status_code == 409
    assert response.json()["code"] == "account_exists"


def test_ops_key_for_unknown_account_is_404(ops_client):
    response = ops_client.post("/api/v1/ops/accounts/ghost/api-keys", {"name": "x"})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_key_with_expiry_in_the_past_is_refused(ops_client):
    ops_client.post("/api/v1/ops/accounts", {"ref": "exp", "role": "quant"})
    response = ops_client.post("/api/v1/ops/accounts/exp/api-keys", {"name": "x", "expires_at": "2001-01-01T00:00:00Z"})
    assert response.status_code == 400
    assert "expires_at" in response.json()["errors"]


def test_create_api_key_command_prints_key_last_and_creates_account(capsys, anon_client):
    call_command("create_api_key", "--account", "cli-quant", "--role", "quant")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert Account.objects.get(ref="cli-quant").role == "quant"
    anon_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert anon_client.get(ME).json()["ref"] == "cli-quant"

    call_command("create_api_key", "--account", "cli-quant", "--role", "quant", "--name", "second")
    second = capsys.readouterr().out.strip().splitlines()[-1]
    assert second != key
    assert AccountAPIKey.objects.filter(account__ref="cli-quant").count() == 2
