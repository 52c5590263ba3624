"""Entitlements keep each grant's changes as domain history (the API's ``changes``) and every one of them
is also in the one audit log, same step, same actor, same instant; requests cancelled by their quant are
audited with the quant, and saving a read-only request page writes nothing."""

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Dataset
from core.audit import audit_entries_for
from entitlements import services, tasks
from entitlements.models import AccessRequest, Grant
from tests.history import admin_history, audited

pytestmark = pytest.mark.django_db

# A grant's domain change and its audit entry name the step alike, but for its creation.
AUDIT_ACTION = {"created": "granted"}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_every_grant_change_served_by_the_api_is_also_in_the_audit_log(
    admin_client, admin_user, ops_client, quant_client, catalog
):
    trial = ops_client.post(
        "/api/v1/ops/grants",
        {"account": quant_client.account.ref, "dataset": "BTC", "frequency": "1d", "trial_days": 3, "note": "Trial"},
    ).json()
    later = (timezone.now() + timedelta(days=20)).replace(microsecond=0)
    sooner = later - timedelta(days=10)
    ops_client.patch(f"/api/v1/ops/grants/{trial['id']}", {"expires_at": later.isoformat(), "reason": "Asked"})
    ops_client.patch(f"/api/v1/ops/grants/{trial['id']}", {"expires_at": sooner.isoformat(), "reason": "Oops"})
    admin_client.post(
        "/admin/entitlements/grant/",
        {"action": "revoke_grants", "_selected_action": [trial["id"]], "apply": "1", "reason": "Chargeback"},
    )
    lapsing = ops_client.post(
        "/api/v1/ops/grants",
        {"account": quant_client.account.ref, "dataset": "ETH", "frequency": "1d", "trial_days": 1},
    ).json()
    Grant.objects.filter(pk=lapsing["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.grants_expire() == 1

    ops, admin = f"ops:{ops_client.account.ref}", f"admin:{admin_user.username}"
    for grant_id, steps in (
        (trial["id"], [(ops, "granted"), (ops, "extended"), (ops, "shortened"), (admin, "revoked")]),
        (lapsing["id"], [(ops, "granted"), ("system", "expired")]),
    ):
        changes = ops_client.get(f"/api/v1/ops/grants/{grant_id}").json()["changes"]
        entries = list(audit_entries_for(Grant.objects.get(pk=grant_id)))
        assert [(c["actor"], AUDIT_ACTION.get(c["action"], c["action"]), _instant(c["at"])) for c in changes] == [
            (e.actor, e.action, e.at) for e in entries
        ]
        assert [(e.actor, e.action) for e in entries] == steps
        assert [row[1:3] for row in admin_history(admin_client, "entitlements_grant", grant_id)] == [
            list(step) for step in steps
        ]


def test_a_request_cancelled_by_its_quant_is_audited_with_the_quant(admin_client, quant_client, catalog):
    created = quant_client.post("/api/v1/access-requests", {"dataset": "BTC", "frequencies": ["1h"]}).json()
    assert quant_client.post(f"/api/v1/access-requests/{created['id']}/cancel").status_code == 200

    quant = f"quant:{quant_client.account.ref}"
    request = AccessRequest.objects.get(pk=created["id"])
    assert [entry[:3] for entry in audited(request)] == [
        (quant, "requested", "Asked for BTC 1h."),
        (quant, "cancelled", "Withdrew 1h."),
    ]


def test_saving_a_read_only_request_page_writes_nothing(admin_client, quant_client, catalog):
    request = services.access_request_create(
        account=quant_client.account, dataset=Dataset.objects.get(symbol="BTC"), frequencies=["1h"]
    )
    item = request.items.get()

    with CaptureQueriesContext(connection) as queries:
        assert admin_client.post(f"/admin/entitlements/accessrequest/{request.pk}/change/", {}).status_code == 302
        assert admin_client.post(f"/admin/entitlements/accessrequestitem/{item.pk}/change/", {}).status_code == 302

    writes = [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and '"entitlements_' in q["sql"]]
    assert writes == []
    assert [entry[1] for entry in audited(request)] == ["requested"]
