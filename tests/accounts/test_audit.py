"""Every write to accounts and API keys, over the API or in the admin, leaves exactly one audit entry
naming who did it, and the object's admin History shows it."""

from datetime import UTC, datetime

import pytest

from accounts.models import Account, AccountAPIKey, Role
from core.models import AuditEntry
from tests.factories import AccountFactory
from tests.history import admin_history, audited

pytestmark = pytest.mark.django_db

NO_INLINE_KEYS = {"api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"}


def _form(account: Account, **changes: object) -> dict[str, object]:
    form: dict[str, object] = {"name": account.name, "email": account.email, **NO_INLINE_KEYS}
    flags = {"is_active": account.is_active, "is_suspended": account.is_suspended, **changes}
    form.update({k: v for k, v in changes.items() if k not in flags})
    form.update({flag: "on" for flag, on in flags.items() if on})
    return form


def test_an_account_created_and_changed_over_the_api_is_audited_with_the_ops_account(admin_client, ops_client):
    created = ops_client.post("/api/v1/ops/accounts", {"ref": "acme-q", "name": "Acme", "role": "quant"})
    assert created.status_code == 201, created.content
    assert ops_client.patch("/api/v1/ops/accounts/acme-q", {"is_suspended": True}).status_code == 200
    assert ops_client.patch("/api/v1/ops/accounts/acme-q", {"is_suspended": True}).status_code == 200  # no change

    account = Account.objects.get(ref="acme-q")
    ops = f"ops:{ops_client.account.ref}"
    assert audited(account) == [
        (ops, "created", "quant account acme-q (Acme).", ""),
        (ops, "changed", "suspended no -> yes.", ""),
    ]
    rows = admin_history(admin_client, "accounts_account", account.pk)
    assert [row[1:4] for row in rows] == [
        [ops, "created", "quant account acme-q (Acme)."],
        [ops, "changed", "suspended no -> yes."],
    ]


def test_suspending_an_account_in_the_admin_goes_through_the_service_and_is_audited(admin_client, admin_user):
    account = AccountFactory(ref="quant-s", role=Role.QUANT, name="Q", email="q@example.com")
    url = f"/admin/accounts/account/{account.pk}/change/"

    response = admin_client.post(url, {**_form(account, is_suspended=True), "role": Role.QUANT})
    assert response.status_code == 302, response.content
    assert admin_client.post(url, {**_form(account, is_suspended=True), "role": Role.QUANT}).status_code == 302

    account.refresh_from_db()
    assert account.is_suspended
    admin = f"admin:{admin_user.username}"
    assert audited(account) == [(admin, "changed", "suspended no -> yes.", "")]  # the unchanged save wrote nothing
    assert [row[1:4] for row in admin_history(admin_client, "accounts_account", account.pk)] == [
        [admin, "changed", "suspended no -> yes."]
    ]


def test_an_account_changed_in_the_admin_lists_each_change(admin_client, admin_user):
    account = AccountFactory(ref="quant-c", role=Role.QUANT, name="Old", email="old@example.com")
    form = {**_form(account, is_active=False), "name": "New", "email": "new@example.com", "role": Role.QUANT}
    assert admin_client.post(f"/admin/accounts/account/{account.pk}/change/", form).status_code == 302
    assert audited(account) == [
        (
            f"admin:{admin_user.username}",
            "changed",
            "name 'Old' -> 'New'; email 'old@example.com' -> 'new@example.com'; active yes -> no.",
            "",
        )
    ]


def test_an_account_added_and_deleted_in_the_admin_is_audited(admin_client, admin_user):
    form = {"ref": "new-buyer", "name": "N", "role": Role.BUYER, "email": "", "is_active": "on", **NO_INLINE_KEYS}
    assert admin_client.post("/admin/accounts/account/add/", form).status_code == 302
    account = Account.objects.get(ref="new-buyer")
    admin = f"admin:{admin_user.username}"
    assert audited(account) == [(admin, "created", "buyer account new-buyer (N).", "")]

    response = admin_client.post(f"/admin/accounts/account/{account.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Account.objects.filter(ref="new-buyer").exists()
    assert [(e.actor, e.action, e.message) for e in AuditEntry.objects.filter(object_id=str(account.pk))] == [
        (admin, "deleted", "buyer account new-buyer."),
        (admin, "created", "buyer account new-buyer (N)."),
    ]


def test_an_api_key_renamed_and_deleted_in_the_admin_is_audited(admin_client, admin_user, quant_client):
    api_key = AccountAPIKey.objects.get(account=quant_client.account)
    url = f"/admin/accounts/accountapikey/{api_key.pk}/change/"
    form = {"name": "laptop", "expiry_date_0": "2099-01-02", "expiry_date_1": "03:04:00"}

    assert admin_client.post(url, form).status_code == 302
    assert admin_client.post(url, form).status_code == 302  # nothing changed the second time

    api_key.refresh_from_db()
    assert (api_key.name, api_key.expiry_date) == ("laptop", datetime(2099, 1, 2, 3, 4, tzinfo=UTC))
    admin = f"admin:{admin_user.username}"
    message = (
        f"Key {api_key.prefix} of {quant_client.account.ref}: name 'test' -> 'laptop'; "
        "expires never -> 2099-01-02 03:04 UTC."
    )
    assert [row[1:4] for row in admin_history(admin_client, "accounts_accountapikey", api_key.pk)] == [
        ["system", "created", f"Key {api_key.prefix} (test) for {quant_client.account.ref} (quant)."],
        [admin, "changed", message],
    ]

    response = admin_client.post(
        "/admin/accounts/accountapikey/",
        {"action": "delete_selected", "_selected_action": [api_key.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccountAPIKey.objects.filter(pk=api_key.pk).exists()
    assert AuditEntry.objects.filter(object_id=str(api_key.pk)).values_list("actor", "action", "message")[0] == (
        admin,
        "deleted",
        f"Key {api_key.prefix} of {quant_client.account.ref}.",
    )
