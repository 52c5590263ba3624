"""API keys and accounts in the admin: keys found by ref, shown once outside any cookie, and the
powerful moves (a key for an Ops account, a role change) behind permissions of their own."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from accounts.models import Account, AccountAPIKey, Role
from core.models import AuditEntry
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

ADD_KEY = "/admin/accounts/accountapikey/add/"
NO_INLINE_KEYS = {"api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"}


@pytest.fixture
def staff_client(client, django_user_model):
    """A staff user who may only add and view API keys and change accounts (no special permission)."""
    user = django_user_model.objects.create_user("keyclerk", password="pw-keyclerk-123", is_staff=True)
    for codename in ("add_accountapikey", "view_accountapikey", "view_account", "change_account"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    client.user = user
    return client


def grant_permission(client, codename: str) -> None:
    client.user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(client.user)


def test_a_key_added_by_account_ref_is_shown_once_and_kept_out_of_cookies(admin_client):
    quant = AccountFactory(ref="jane-q", role=Role.QUANT)
    response = admin_client.post(ADD_KEY, {"account_ref": " jane-q ", "name": "laptop"})
    assert response.status_code == 200
    html = response.content.decode()
    api_key = AccountAPIKey.objects.get(account=quant)
    import re

    key = re.search(r'id="new-api-key" value="([^"]+)"', html).group(1)
    assert key.startswith(api_key.prefix + ".")
    assert "no-store" in response["Cache-Control"]
    assert "messages" not in response.cookies  # the key never travels in the messages cookie
    assert key not in str(admin_client.session.items())
    # The key works, and the next page shows it nowhere.
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert api.get("/api/v1/me").json()["ref"] == "jane-q"
    assert key not in admin_client.get(f"/admin/accounts/accountapikey/{api_key.pk}/change/").content.decode()


def test_an_unknown_ref_is_a_form_error(admin_client):
    response = admin_client.post(ADD_KEY, {"account_ref": "nobody", "name": "x"})
    assert response.status_code == 200
    assert "No account has the ref “nobody”" in response.content.decode()
    assert AccountAPIKey.objects.count() == 0


def test_a_key_for_an_ops_account_needs_its_own_permission(staff_client):
    AccountFactory(ref="ops-1", role=Role.OPS)
    AccountFactory(ref="quant-1", role=Role.QUANT)
    refused = staff_client.post(ADD_KEY, {"account_ref": "ops-1", "name": "x"})
    assert "needs the permission" in refused.content.decode()
    assert AccountAPIKey.objects.count() == 0
    assert staff_client.post(ADD_KEY, {"account_ref": "quant-1", "name": "x"}).status_code == 200
    grant_permission(staff_client, "add_ops_api_key")
    assert 'id="new-api-key"' in staff_client.post(ADD_KEY, {"account_ref": "ops-1", "name": "x"}).content.decode()
    assert AccountAPIKey.objects.filter(account__ref="ops-1").count() == 1


def test_changing_a_role_needs_its_own_permission_and_is_kept_with_its_reason(staff_client):
    account = AccountFactory(ref="quant-2", role=Role.QUANT, name="Q")
    url = f"/admin/accounts/account/{account.pk}/change/"
    form = {"name": "Q", "role": Role.OPS, "email": "", "is_active": "on", **NO_INLINE_KEYS}
    staff_client.post(url, form)
    assert Account.objects.get(pk=account.pk).role == Role.QUANT  # read-only without the permission
    grant_permission(staff_client, "change_account_role")
    response = staff_client.post(url, {**form, "reason": "Joined the Ops team"})
    assert response.status_code == 302
    assert Account.objects.get(pk=account.pk).role == Role.OPS
    entry = AuditEntry.objects.get(object_id=str(account.pk), action="role changed")
    assert (entry.actor, entry.message, entry.reason) == ("admin:keyclerk", "Role quant -> ops.", "Joined the Ops team")


def test_creating_an_ops_account_in_the_admin_needs_the_role_permission(staff_client):
    grant_permission(staff_client, "add_account")
    form = {"ref": "new-ops", "name": "N", "role": Role.OPS, "email": "", "is_active": "on", **NO_INLINE_KEYS}
    refused = staff_client.post("/admin/accounts/account/add/", form)
    assert refused.status_code == 200 and not Account.objects.filter(ref="new-ops").exists()
    grant_permission(staff_client, "change_account_role")
    assert staff_client.post("/admin/accounts/account/add/", form).status_code == 302
    assert Account.objects.get(ref="new-ops").role == Role.OPS


def test_last_used_is_shown_read_only(admin_client):
    quant = AccountFactory(role=Role.QUANT)
    admin_client.post(ADD_KEY, {"account_ref": quant.ref, "name": "x"})
    api_key = AccountAPIKey.objects.get(account=quant)
    html = admin_client.get(f"/admin/accounts/accountapikey/{api_key.pk}/change/").content.decode()
    assert "Last used at" in html and 'name="last_used_at"' not in html
