import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Account, Role
from entitlements.models import AccessRequestItem, Grant, GrantChange
from tests.entitlements.conftest import (
    ACCESS_REQUESTS,
    ENTITLEMENTS,
    OPS_GRANTS,
    OPS_REQUESTS,
    events,
    recipient_ids,
)
from tests.factories import AccountFactory, GrantFactory
from tests.support import wait_until

pytestmark = pytest.mark.django_db


def items_by_frequency(body):
    return {item["frequency"]: item for item in body["items"]}


# --- the seed workflow ----------------------------------------------------------------


def test_whole_workflow_browse_request_ops_decide_quant_notified_and_entitled(
    anon_client, quant_client, ops_client, catalog
):
    # A quant browses the catalog without a key.
    datasets = anon_client.get("/api/v1/datasets").json()["results"]
    assert {d["symbol"]: [f["frequency"] for f in d["frequencies"]] for d in datasets} == {
        "BTC": ["1h", "1d", "1mo"],
        "ETH": ["1d"],
    }

    # ... asks for BTC hourly and daily.
    response = quant_client.post(
        ACCESS_REQUESTS, {"dataset": "btc", "frequencies": ["1h", "1d"], "reason": "Backtesting momentum"}
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] == "pending"
    assert created["dataset"] == "BTC"
    assert created["account"] == quant_client.account.ref
    for item in created["items"]:
        assert item["status"] == "pending"
        assert item["decided_automatically"] is False
        assert item["rule"] == "manual_review"
        assert "Ops" in item["note"]
    request_id = created["id"]

    # Ops were told, over the outbox.
    [created_event] = events("access_request.created")
    assert created_event.data["id"] == request_id
    assert recipient_ids(created_event) == {ops_client.account.pk}

    # Ops see it in the pending queue.
    queue = ops_client.get(OPS_REQUESTS, {"status": "pending"}).json()["results"]
    assert [r["id"] for r in queue] == [request_id]
    assert queue[0]["reason"] == "Backtesting momentum"

    # Ops approve the hourly item and refuse the daily one.
    response = ops_client.post(f"{OPS_REQUESTS}/{request_id}/approve", {"frequencies": ["1h"], "note": "ok"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "pending"  # 1d still waits
    assert items_by_frequency(body)["1h"]["status"] == "approved"
    assert items_by_frequency(body)["1h"]["decided_by"] == f"ops:{ops_client.account.ref}"
    response = ops_client.post(f"{OPS_REQUESTS}/{request_id}/refuse", {"reason": "Daily is sold separately"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "partially_approved"
    assert ops_client.get(OPS_REQUESTS, {"status": "pending"}).json()["results"] == []

    # The quant hears each decision ...
    decided = events("access_request.decided")
    assert len(decided) == 2
    assert all(recipient_ids(e) == {quant_client.account.pk} for e in decided)
    assert decided[-1].data["status"] == "partially_approved"
    [grant_event] = events("access_grant.created")
    assert grant_event.data["frequency"] == "1h"
    assert recipient_ids(grant_event) == {quant_client.account.pk}

    # ... can poll the request ...
    polled = quant_client.get(f"{ACCESS_REQUESTS}/{request_id}").json()
    assert items_by_frequency(polled)["1h"]["status"] == "approved"
    assert items_by_frequency(polled)["1h"]["grant_id"] == grant_event.data["id"]
    assert items_by_frequency(polled)["1d"]["status"] == "refused"
    assert items_by_frequency(polled)["1d"]["note"] == "Daily is sold separately"
    assert "decided_by" not in items_by_frequency(polled)["1d"]

    # ... and is entitled to exactly what was approved.
    entitlements = quant_client.get(ENTITLEMENTS).json()["results"]
    assert [(e["dataset"], e["frequency"], e["expires_at"], e["request_id"]) for e in entitlements] == [
        ("BTC", "1h", None, request_id)
    ]


def test_quant_lists_own_requests_newest_first(quant_client, make_client, request_access):
    first = request_access(quant_client, "BTC", ("1h",))
    second = request_access(quant_client, "ETH", ("1d",))
    request_access(make_client(Role.QUANT), "BTC", ("1h",))
    body = quant_client.get(ACCESS_REQUESTS).json()
    assert [r["id"] for r in body["results"]] == [second["id"], first["id"]]
    page = quant_client.get(ACCESS_REQUESTS, {"page_size": 1}).json()
    assert [r["id"] for r in page["results"]] == [second["id"]]
    assert page["next"]


def test_another_quants_request_is_404(quant_client, make_client, request_access):
    mine = request_access(quant_client, "BTC", ("1h",))
    other = make_client(Role.QUANT)
    assert other.get(f"{ACCESS_REQUESTS}/{mine['id']}").status_code == 404
    response = other.post(f"{ACCESS_REQUESTS}/{mine['id']}/cancel")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- validation and conflicts ---------------------------------------------------------


def test_unknown_dataset_is_404(quant_client, catalog):
    response = quant_client.post(ACCESS_REQUESTS, {"dataset": "DOGE", "frequencies": ["1d"]})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"dataset": "ETH", "frequencies": ["1h"]}, "ETH has no 1h; it has 1d."),
        ({"dataset": "BTC", "frequencies": ["1d", "1d"]}, "Listed more than once: 1d."),
        ({"dataset": "BTC", "frequencies": []}, "Name at least one frequency."),
        ({"dataset": "BTC", "frequencies": ["5m"]}, "BTC has no 5m; it has 1h, 1d, 1mo."),
    ],
)
def test_bad_frequencies_are_400_naming_the_field(quant_client, catalog, payload, message):
    response = quant_client.post(ACCESS_REQUESTS, payload)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"] == {"frequencies": [message]}
    assert AccessRequestItem.objects.count() == 0


def test_missing_frequencies_is_400(quant_client, catalog):
    response = quant_client.post(ACCESS_REQUESTS, {"dataset": "BTC"})
    assert response.status_code == 400
    assert "frequencies" in response.json()["errors"]


def test_already_pending_frequency_is_409_with_the_request_id(quant_client, request_access):
    first = request_access(quant_client, "BTC", ("1h",))
    response = quant_client.post(ACCESS_REQUESTS, {"dataset": "BTC", "frequencies": ["1d", "1h"]})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "already_pending"
    assert body["request_id"] == first["id"]
    assert body["conflicts"] == [{"frequency": "1h", "request_id": first["id"]}]
    # Nothing was created for 1d either: a request is all or nothing.
    assert AccessRequestItem.objects.filter(frequency="1d").count() == 0


def test_already_granted_frequency_is_409_with_the_grant_id(quant_client, catalog):
    grant = GrantFactory(account=quant_client.account, dataset__symbol="BTC", frequency="1h")
    response = quant_client.post(ACCESS_REQUESTS, {"dataset": "BTC", "frequencies": ["1h"]})
    assert response.status_code == 409
    assert response.json()["code"] == "already_granted"
    assert response.json()["grant_id"] == grant.pk


def test_an_expired_trial_does_not_block_a_new_request(quant_client, ops_client, catalog):
    GrantFactory(
        account=quant_client.account,
        dataset__symbol="BTC",
        frequency="1h",
        starts_at=timezone.now() - timedelta(days=8),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    response = quant_client.post(ACCESS_REQUESTS, {"dataset": "BTC", "frequencies": ["1h"]})
    assert response.status_code == 201
    # Approving it retires the stale grant the sweeper had not reached yet.
    response = ops_client.post(f"{OPS_REQUESTS}/{response.json()['id']}/approve", {})
    assert response.status_code == 200, response.content
    assert sorted(Grant.objects.values_list("status", flat=True)) == ["active", "expired"]


# --- the auto-decision policy ---------------------------------------------------------


def test_auto_approve_mode_grants_at_once(quant_client, ops_client, auto_approve):
    auto_approve("BTC", "1d")
    response = quant_client.post(ACCESS_REQUESTS, {"dataset": "BTC", "frequencies": ["1d", "1h"]})
    assert response.status_code == 201
    body = response.json()
    daily, hourly = items_by_frequency(body)["1d"], items_by_frequency(body)["1h"]
    assert daily["status"] == "approved"
    assert daily["decided_automatically"] is True
    assert daily["rule"] == "auto_approve"
    assert "auto-approve" in daily["note"]
    assert daily["grant_id"] is not None
    assert hourly["status"] == "pending"
    assert body["status"] == "pending"
    assert [e["frequency"] for e in quant_client.get(ENTITLEMENTS).json()["results"]] == ["1d"]
    [decided] = events("access_request.decided")
    assert decided.data["decided_item_ids"] == [daily["id"]]
    # Ops are still told about the pending hourly item.
    assert len(events("access_request.created")) == 1
    detail = ops_client.get(f"{OPS_REQUESTS}/{body['id']}").json()
    assert items_by_frequency(detail)["1d"]["decided_by"] == "system"


def test_fully_auto_approved_request_does_not_bother_ops(quant_client, ops_client, auto_approve):
    auto_approve("ETH", "1d")
    body = quant_client.post(ACCESS_REQUESTS, {"dataset": "ETH", "frequencies": ["1d"]}).json()
    assert body["status"] == "approved"
    assert events("access_request.created") == []
    assert ops_client.get(OPS_REQUESTS, {"status": "pending"}).json()["results"] == []


def test_suspended_account_is_refused_automatically_even_in_auto_approve(make_client, auto_approve):
    auto_approve("BTC", "1h")
    suspended = make_client(Role.QUANT, is_suspended=True)
    body = suspended.post(ACCESS_REQUESTS, {"dataset": "BTC", "frequencies": ["1h", "1d"]}).json()
    assert body["status"] == "refused"
    for item in body["items"]:
        assert item["status"] == "refused"
        assert item["decided_automatically"] is True
        assert item["rule"] == "account_suspended"
        assert "suspended" in item["note"]
    assert Grant.objects.count() == 0
    assert events("access_request.created") == []
    assert len(events("access_request.decided")) == 1


def test_refusal_cooldown_refuses_a_repeat_request_then_lets_it_through(
    quant_client, ops_client, request_access, settings
):
    settings.ENTITLEMENTS_REFUSAL_COOLDOWN = timedelta(hours=24)
    first = request_access(quant_client, "BTC", ("1h",))
    ops_client.post(f"{OPS_REQUESTS}/{first['id']}/refuse", {"reason": "Not now"})

    again = request_access(quant_client, "BTC", ("1h", "1d"))
    assert items_by_frequency(again)["1h"]["status"] == "refused"
    assert items_by_frequency(again)["1h"]["rule"] == "refusal_cooldown"
    assert "after" in items_by_frequency(again)["1h"]["note"]
    assert items_by_frequency(again)["1d"]["status"] == "pending"  # only the refused frequency cools down
    quant_client.post(f"{ACCESS_REQUESTS}/{again['id']}/cancel")

    # An automatic refusal does not restart the clock; once the Ops refusal is 24 h old, requests go through.
    AccessRequestItem.objects.filter(request_id=first["id"]).update(
        decided_at=timezone.now() - timedelta(hours=24, seconds=1)
    )
    later = request_access(quant_client, "BTC", ("1h",))
    assert later["items"][0]["status"] == "pending"


def test_refusal_cooldown_zero_disables_it(quant_client, ops_client, request_access, settings):
    settings.ENTITLEMENTS_REFUSAL_COOLDOWN = timedelta(0)
    first = request_access(quant_client, "BTC", ("1h",))
    ops_client.post(f"{OPS_REQUESTS}/{first['id']}/refuse", {"reason": "Not now"})
    assert request_access(quant_client, "BTC", ("1h",))["items"][0]["status"] == "pending"


# --- Ops decisions --------------------------------------------------------------------


def test_approve_as_trial_with_trial_days(quant_client, ops_client, request_access):
    created = request_access(quant_client, "BTC", ("1h", "1d"))
    before = timezone.now()
    response = ops_client.post(f"{OPS_REQUESTS}/{created['id']}/approve", {"trial_days": 7, "note": "Trial"})
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    entitlements = quant_client.get(ENTITLEMENTS).json()["results"]
    assert len(entitlements) == 2
    for entitlement in entitlements:
        expires_at = parse_datetime(entitlement["expires_at"])
        assert before + timedelta(days=7) <= expires_at <= timezone.now() + timedelta(days=7)


def test_approve_with_expires_at(quant_client, ops_client, request_access):
    created = request_access(quant_client, "ETH", ("1d",))
    end = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    response = ops_client.post(f"{OPS_REQUESTS}/{created['id']}/approve", {"expires_at": end.isoformat()})
    assert response.status_code == 200
    assert Grant.objects.get().expires_at == end


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"trial_days": 7, "expires_at": "2099-01-01T00:00:00Z"}, "trial_days"),
        ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"trial_days": 0}, "trial_days"),
        ({"frequencies": ["1mo"]}, "frequencies"),
        ({"frequencies": []}, "frequencies"),
    ],
)
def test_bad_approvals_are_400_and_change_nothing(quant_client, ops_client, request_access, payload, field):
    created = request_access(quant_client, "BTC", ("1h", "1d"))
    response = ops_client.post(f"{OPS_REQUESTS}/{created['id']}/approve", payload)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert Grant.objects.count() == 0
    assert set(AccessRequestItem.objects.values_list("status", flat=True)) == {"pending"}


def test_refuse_needs_a_reason(quant_client, ops_client, request_access):
    created = request_access(quant_client, "BTC", ("1h",))
    for payload in ({}, {"reason": "   "}):
        response = ops_client.post(f"{OPS_REQUESTS}/{created['id']}/refuse", payload)
        assert response.status_code == 400
        assert "reason" in response.json()["errors"]


def test_deciding_a_decided_item_is_409_already_decided(quant_client, ops_client, make_client, request_access):
    created = request_access(quant_client, "BTC", ("1h", "1d"))
    assert ops_client.post(f"{OPS_REQUESTS}/{created['id']}/approve", {"frequencies": ["1h"]}).status_code == 200
    other_ops = make_client(Role.OPS)
    response = other_ops.post(f"{OPS_REQUESTS}/{created['id']}/refuse", {"frequencies": ["1h"], "reason": "No"})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "already_decided"
    assert body["items"][0]["frequency"] == "1h"
    assert body["items"][0]["status"] == "approved"
    ops_client.post(f"{OPS_REQUESTS}/{created['id']}/refuse", {"reason": "No"})
    response = ops_client.post(f"{OPS_REQUESTS}/{created['id']}/approve", {})
    assert response.status_code == 409
    assert response.json()["code"] == "already_decided"


def test_unknown_request_is_404_for_ops(ops_client, catalog):
    assert ops_client.post(f"{OPS_REQUESTS}/999999/approve", {}).status_code == 404
    assert ops_client.get(f"{OPS_REQUESTS}/999999").status_code == 404


def test_quant_cancels_pending_items_then_409(quant_client, ops_client, request_access):
    created = request_access(quant_client, "BTC", ("1h", "1d"))
    ops_client.post(f"{OPS_REQUESTS}/{created['id']}/approve", {"frequencies": ["1h"]})
    response = quant_client.post(f"{ACCESS_REQUESTS}/{created['id']}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert items_by_frequency(body)["1d"]["status"] == "cancelled"
    assert items_by_frequency(body)["1h"]["status"] == "approved"
    assert body["status"] == "partially_approved"
    response = quant_client.post(f"{ACCESS_REQUESTS}/{created['id']}/cancel")
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_pending"
    # Cancelled items free the slot for a new request.
    assert quant_client.post(ACCESS_REQUESTS, {"dataset": "BTC", "frequencies": ["1d"]}).status_code == 201


def test_ops_queue_is_oldest_first_with_filters(ops_client, make_client, request_access):
    alice = make_client(Role.QUANT, ref="alice")
    bob = make_client(Role.QUANT, ref="bob")
    a1 = request_access(alice, "BTC", ("1h",))
    b1 = request_access(bob, "ETH", ("1d",))
    a2 = request_access(alice, "BTC", ("1d", "1mo"))
    ops_client.post(f"{OPS_REQUESTS}/{a2['id']}/refuse", {"reason": "No"})

    def ids(**params):
        response = ops_client.get(OPS_REQUESTS, params)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    assert ids() == [a1["id"], b1["id"], a2["id"]]
    assert ids(status="pending") == [a1["id"], b1["id"]]
    assert ids(status="refused") == [a2["id"]]
    assert ids(account="alice") == [a1["id"], a2["id"]]
    assert ids(dataset="eth") == [b1["id"]]
    assert ids(frequency="1d") == [b1["id"], a2["id"]]
    assert ids(dataset="BTC", frequency="1h", status="pending") == [a1["id"]]
    response = ops_client.get(OPS_REQUESTS, {"status": "nonsense"})
    assert response.status_code == 400
    assert "status" in response.json()["errors"]


def test_concurrent_approvals_exactly_one_wins(transactional_db, make_client, catalog):
    quant = make_client(Role.QUANT)
    created = quant.post(ACCESS_REQUESTS, {"dataset": "BTC", "frequencies": ["1h", "1d"]}).json()
    clients = [make_client(Role.OPS), make_client(Role.OPS)]
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []
    codes: list[str] = []

    def decide(client):
        try:
            barrier.wait(timeout=10)
            response = client.post(f"{OPS_REQUESTS}/{created['id']}/approve", {"trial_days": 3})
            statuses.append(response.status_code)
            if response.status_code != 200:
                codes.append(response.json()["code"])
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 409]
    assert codes == ["already_decided"]
    assert Grant.objects.count() == 2
    assert GrantChange.objects.filter(action="created").count() == 2
    assert len(events("access_request.decided")) == 1


def test_concurrent_identical_requests_exactly_one_is_created(transactional_db, make_client, catalog):
    quant = make_client(Role.QUANT)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def ask():
        try:
            barrier.wait(timeout=10)
            response = quant.post(ACCESS_REQUESTS, {"dataset": "BTC", "frequencies": ["1h"]})
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [201, 409]
    assert AccessRequestItem.objects.filter(status="pending").count() == 1


# --- grants over the Ops API ----------------------------------------------------------


def test_ops_grant_directly_with_a_trial_and_it_settles_a_pending_item(quant_client, ops_client, request_access):
    created = request_access(quant_client, "BTC", ("1h", "1d"))
    response = ops_client.post(
        OPS_GRANTS,
        {"account": quant_client.account.ref, "dataset": "BTC", "frequency": "1h", "trial_days": 14, "note": "Demo"},
    )
    assert response.status_code == 201, response.content
    grant = response.json()
    assert grant["status"] == "active"
    assert grant["request_id"] == created["id"]
    assert grant["created_by"] == f"ops:{ops_client.account.ref}"
    assert grant["changes"][0]["action"] == "created"
    assert grant["changes"][0]["reason"] == "Demo"
    request = quant_client.get(f"{ACCESS_REQUESTS}/{created['id']}").json()
    assert items_by_frequency(request)["1h"]["status"] == "approved"
    assert items_by_frequency(request)["1d"]["status"] == "pending"
    assert [(e["frequency"], e["id"]) for e in quant_client.get(ENTITLEMENTS).json()["results"]] == [
        ("1h", grant["id"])
    ]


def test_ops_grant_without_a_request(quant_client, ops_client, catalog):
    response = ops_client.post(OPS_GRANTS, {"account": quant_client.account.ref, "dataset": "ETH", "frequency": "1d"})
    assert response.status_code == 201
    assert response.json()["expires_at"] is None
    assert response.json()["request_id"] is None
    [event] = events("access_grant.created")
    assert recipient_ids(event) == {quant_client.account.pk}
    again = ops_client.post(OPS_GRANTS, {"account": quant_client.account.ref, "dataset": "ETH", "frequency": "1d"})
    assert again.status_code == 409
    assert again.json()["code"] == "already_granted"
    assert again.json()["grant_id"] == response.json()["id"]


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"account": "seller-1", "dataset": "BTC", "frequency": "1h"}, 400, "account"),
        ({"account": "quant-1", "dataset": "ETH", "frequency": "1h"}, 400, "frequency"),
        ({"account": "nobody", "dataset": "BTC", "frequency": "1h"}, 404, None),
        ({"account": "quant-1", "dataset": "DOGE", "frequency": "1h"}, 404, None),
        (
            {"account": "quant-1", "dataset": "BTC", "frequency": "1h", "expires_at": "2001-01-01T00:00:00Z"},
            400,
            "expires_at",
        ),
    ],
)
def test_bad_direct_grants(ops_client, catalog, payload, status, field):
    AccountFactory(ref="seller-1", role=Role.SELLER)
    AccountFactory(ref="quant-1", role=Role.QUANT)
    response = ops_client.post(OPS_GRANTS, payload)
    assert response.status_code == status, response.content
    if field:
        assert field in response.json()["errors"]
    assert Grant.objects.count() == 0


def test_extend_shorten_and_make_permanent(quant_client, ops_client, catalog):
    grant = ops_client.post(
        OPS_GRANTS, {"account": quant_client.account.ref, "dataset": "BTC", "frequency": "1d", "trial_days": 2}
    ).json()
    url = f"{OPS_GRANTS}/{grant['id']}"
    later = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    response = ops_client.patch(url, {"expires_at": later.isoformat(), "reason": "Extended trial"})
    assert response.status_code == 200, response.content
    assert parse_datetime(response.json()["expires_at"]) == later
    sooner = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    assert ops_client.patch(url, {"expires_at": sooner.isoformat()}).status_code == 200
    response = ops_client.patch(url, {"expires_at": None, "reason": "Customer signed"})
    assert response.json()["expires_at"] is None
    assert [(c["action"], c["actor"]) for c in response.json()["changes"]] == [
        ("created", f"ops:{ops_client.account.ref}"),
        ("extended", f"ops:{ops_client.account.ref}"),
        ("shortened", f"ops:{ops_client.account.ref}"),
        ("extended", f"ops:{ops_client.account.ref}"),
    ]
    assert response.json()["changes"][1]["reason"] == "Extended trial"
    assert quant_client.get(ENTITLEMENTS).json()["results"][0]["expires_at"] is None
    # Each move of the end told the quant, over their own events feed too.
    updated = events("access_grant.updated")
    assert [recipient_ids(e) for e in updated] == [{quant_client.account.pk}] * 3
    assert [(e.data["previous_expires_at"] is None, e.data["expires_at"] is None) for e in updated] == [
        (False, False),
        (False, False),
        (False, True),
    ]
    assert updated[0].data["reason"] == "Extended trial"
    feed = quant_client.get("/api/v1/events", {"type": "access_grant.updated"}).json()["results"]
    assert [e["data"]["id"] for e in feed] == [grant["id"]] * 3
    response = ops_client.patch(url, {"expires_at": "2001-01-01T00:00:00Z"})
    assert response.status_code == 400
    assert "expires_at" in response.json()["errors"]


def test_revoke_ends_access_immediately(quant_client, ops_client, catalog):
    grant = ops_client.post(
        OPS_GRANTS, {"account": quant_client.account.ref, "dataset": "BTC", "frequency": "1h"}
    ).json()
    assert len(quant_client.get(ENTITLEMENTS).json()["results"]) == 1
    url = f"{OPS_GRANTS}/{grant['id']}/revoke"
    response = ops_client.post(url, {})
    assert response.status_code == 400
    assert "reason" in response.json()["errors"]
    response = ops_client.post(url, {"reason": "Contract ended"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "revoked"
    assert body["revoke_reason"] == "Contract ended"
    assert body["revoked_by"] == f"ops:{ops_client.account.ref}"
    assert quant_client.get(ENTITLEMENTS).json()["results"] == []
    [event] = events("access_grant.revoked")
    assert event.data["reason"] == "Contract ended"
    assert recipient_ids(event) == {quant_client.account.pk}
    again = ops_client.post(url, {"reason": "again"})
    assert again.status_code == 409
    assert again.json()["code"] == "grant_not_active"
    patch = ops_client.patch(f"{OPS_GRANTS}/{grant['id']}", {"expires_at": None})
    assert patch.status_code == 409


def test_grant_list_filters_by_effective_status(ops_client, make_client, catalog):
    alice = AccountFactory(ref="alice", role=Role.QUANT)
    now = timezone.now()
    active = GrantFactory(account=alice, dataset__symbol="BTC", frequency="1h")
    lapsed = GrantFactory(
        account=alice, dataset__symbol="BTC", frequency="1d", starts_at=now - timedelta(days=2), expires_at=now
    )
    revoked = GrantFactory(account=alice, dataset__symbol="ETH", frequency="1d", status="revoked", revoked_at=now)
    other = GrantFactory(dataset__symbol="ETH", frequency="1d")

    def ids(**params):
        response = ops_client.get(OPS_GRANTS, params)
        assert response.status_code == 200, response.content
        return sorted(g["id"] for g in response.json()["results"])

    assert ids(status="active") == sorted([active.pk, other.pk])
    assert ids(status="expired") == [lapsed.pk]  # past expires_at, even before the sweeper marks it
    assert ids(status="revoked") == [revoked.pk]
    assert ids(account="alice") == sorted([active.pk, lapsed.pk, revoked.pk])
    assert ids(account="alice", dataset="btc", frequency="1d") == [lapsed.pk]
    detail = ops_client.get(f"{OPS_GRANTS}/{lapsed.pk}").json()
    assert detail["status"] == "expired"
    assert ops_client.get(f"{OPS_GRANTS}/999999").status_code == 404


def test_access_ends_at_the_trial_end_whatever_the_workers_do(quant_client, catalog):
    """No sweeper runs here: the read itself compares expires_at with the clock."""
    end = timezone.now() + timedelta(milliseconds=500)
    GrantFactory(account=quant_client.account, dataset__symbol="BTC", frequency="1h", expires_at=end)
    assert len(quant_client.get(ENTITLEMENTS).json()["results"]) == 1
    wait_until(lambda: not quant_client.get(ENTITLEMENTS).json()["results"], 10, "the grant outlived its expires_at")
    assert timezone.now() >= end
    assert Grant.objects.get().status == "active"  # not marked yet, and still no access


# --- roles ----------------------------------------------------------------------------

QUANT_ENDPOINTS = [
    ("get", ACCESS_REQUESTS),
    ("post", ACCESS_REQUESTS),
    ("get", f"{ACCESS_REQUESTS}/1"),
    ("post", f"{ACCESS_REQUESTS}/1/cancel"),
    ("get", ENTITLEMENTS),
]
OPS_ENDPOINTS = [
    ("get", OPS_REQUESTS),
    ("get", f"{OPS_REQUESTS}/1"),
    ("post", f"{OPS_REQUESTS}/1/approve"),
    ("post", f"{OPS_REQUESTS}/1/refuse"),
    ("get", OPS_GRANTS),
    ("post", OPS_GRANTS),
    ("get", f"{OPS_GRANTS}/1"),
    ("patch", f"{OPS_GRANTS}/1"),
    ("post", f"{OPS_GRANTS}/1/revoke"),
]


@pytest.mark.parametrize(("method", "url"), QUANT_ENDPOINTS)
@pytest.mark.parametrize("role", [Role.OPS, Role.SELLER, Role.BUYER])
def test_quant_endpoints_refuse_other_roles(make_client, role, method, url):
    response = getattr(make_client(role), method)(url, {})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(("method", "url"), OPS_ENDPOINTS)
@pytest.mark.parametrize("role", [Role.QUANT, Role.SELLER, Role.BUYER])
def test_ops_endpoints_refuse_other_roles(make_client, role, method, url):
    response = getattr(make_client(role), method)(url, {})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(("method", "url"), QUANT_ENDPOINTS + OPS_ENDPOINTS)
def test_every_endpoint_needs_a_key(anon_client, method, url):
    response = getattr(anon_client, method)(url, {})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# --- query counts ---------------------------------------------------------------------


@pytest.fixture
def busy(ops_client, make_client, request_access):
    """Several quants with requests in every state and grants, so N+1 queries would show."""
    quants = [make_client(Role.QUANT) for _ in range(4)]
    for quant in quants:
        first = request_access(quant, "BTC", ("1h", "1d", "1mo"))
        ops_client.post(f"{OPS_REQUESTS}/{first['id']}/approve", {"frequencies": ["1h"], "trial_days": 3})
        ops_client.post(f"{OPS_REQUESTS}/{first['id']}/refuse", {"frequencies": ["1mo"], "reason": "No"})
        request_access(quant, "ETH", ("1d",))
        ops_client.post(OPS_GRANTS, {"account": quant.account.ref, "dataset": "ETH", "frequency": "1d"})
    return quants


@pytest.mark.usefixtures("api_keys_kept")
def test_list_endpoints_have_bounded_queries(busy, ops_client, django_assert_num_queries):
    quant = busy[0]
    # the page, then one query per prefetched relation, however many rows (the key row is kept)
    with django_assert_num_queries(3):
        response = quant.get(ACCESS_REQUESTS)
    assert len(response.json()["results"]) == 2
    with django_assert_num_queries(1):
        response = quant.get(ENTITLEMENTS)
    assert len(response.json()["results"]) == 2
    with django_assert_num_queries(3):
        response = ops_client.get(OPS_REQUESTS)
    assert len(response.json()["results"]) == 8
    with django_assert_num_queries(1):
        response = ops_client.get(OPS_GRANTS)
    assert len(response.json()["results"]) == 8


def test_schema_describes_the_entitlement_endpoints(anon_client):
    schema = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in [
        "/api/v1/access-requests",
        "/api/v1/access-requests/{request_id}/cancel",
        "/api/v1/entitlements",
        "/api/v1/ops/access-requests/{request_id}/approve",
        "/api/v1/ops/grants/{grant_id}/revoke",
    ]:
        assert path in paths
    create = paths["/api/v1/access-requests"]["post"]
    assert "201" in create["responses"] and "409" in create["responses"]
    assert "requestBody" in create
    assert Account.objects.count() == 0


# --- what the quant sees elsewhere: data reads and webhooks ---------------------------


def test_refused_data_read_names_what_is_missing_and_how_to_ask_then_access_follows_grants(
    quant_client, ops_client, catalog, settings
):
    settings.PRICE_SOURCE = "synthetic"
    prices = "/api/v1/datasets/ETH/prices"
    window = {"frequency": "1d", "start": "2024-01-01T00:00:00Z", "end": "2024-01-04T00:00:00Z"}
    response = quant_client.get(prices, window)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "not_entitled"
    assert (problem["dataset"], problem["frequency"]) == ("ETH", "1d")
    how = problem["how_to_request"]
    assert (how["method"], how["url"]) == ("POST", ACCESS_REQUESTS)
    market_caps = quant_client.get("/api/v1/datasets/ETH/market-caps")
    assert market_caps.status_code == 403
    assert market_caps.json()["code"] == "not_entitled"

    # Following the instructions works as written.
    created = quant_client.post(how["url"], how["body"])
    assert created.status_code == 201, created.content
    ops_client.post(f"{OPS_REQUESTS}/{created.json()['id']}/approve", {})
    response = quant_client.get(prices, window)
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 3

    # Revocation ends it on the next read.
    grant_id = quant_client.get(ENTITLEMENTS).json()["results"][0]["id"]
    ops_client.post(f"{OPS_GRANTS}/{grant_id}/revoke", {"reason": "Contract ended"})
    assert quant_client.get(prices, window).status_code == 403


def test_quant_and_ops_receive_signed_webhooks_for_the_workflow(
    quant_client, ops_client, catalog, webhook_receiver, deliver_now
):
    from standardwebhooks.webhooks import Webhook

    ops_endpoint = ops_client.post(
        "/api/v1/webhook-endpoints",
        {"url": webhook_receiver.url_for("/ops"), "event_types": ["access_request.created"]},
    )
    assert ops_endpoint.status_code == 201, ops_endpoint.content
    quant_endpoint = quant_client.post("/api/v1/webhook-endpoints", {"url": webhook_receiver.url_for("/quant")})
    assert quant_endpoint.status_code == 201, quant_endpoint.content

    created = quant_client.post(ACCESS_REQUESTS, {"dataset": "BTC", "frequencies": ["1h"]}).json()
    ops_client.post(f"{OPS_REQUESTS}/{created['id']}/approve", {"trial_days": 7})
    deliver_now()

    received = webhook_receiver.wait_for(3)
    by_path: dict[str, list] = {}
    for request in received:
        by_path.setdefault(request.path, []).append(request)
    [to_ops] = by_path["/ops"]
    body = Webhook(ops_endpoint.json()["secret"]).verify(to_ops.body, to_ops.headers)
    assert body["type"] == "access_request.created"
    assert body["data"]["id"] == created["id"]
    quant_verifier = Webhook(quant_endpoint.json()["secret"])
    quant_bodies = [quant_verifier.verify(r.body, r.headers) for r in by_path["/quant"]]
    assert sorted(b["type"] for b in quant_bodies) == ["access_grant.created", "access_request.decided"]
    decided = next(b for b in quant_bodies if b["type"] == "access_request.decided")
    assert decided["data"]["status"] == "approved"
    assert decided["data"]["items"][0]["grant_id"] is not None
    granted = next(b for b in quant_bodies if b["type"] == "access_grant.created")
    assert granted["data"]["expires_at"] is not None


def test_entitlements_page_newest_first_with_a_next_link_that_reaches_the_rest(quant_client, make_client):
    now = timezone.now()
    mine = [GrantFactory(account=quant_client.account, dataset__symbol=f"P{n}", frequency="1d") for n in range(3)]
    GrantFactory(account=quant_client.account, dataset__symbol="OLD", expires_at=now - timedelta(seconds=1))
    GrantFactory(account=quant_client.account, dataset__symbol="LATER", starts_at=now + timedelta(days=1))
    GrantFactory(account=make_client(Role.QUANT).account, dataset__symbol="THEIRS")

    first = quant_client.get(ENTITLEMENTS, {"page_size": 2}).json()
    assert [e["dataset"] for e in first["results"]] == ["P2", "P1"]
    assert [e["id"] for e in first["results"]] == [mine[2].pk, mine[1].pk]
    assert first["next"] and "cursor=" in first["next"]
    rest = quant_client.get(first["next"]).json()
    assert [e["dataset"] for e in rest["results"]] == ["P0"]
    assert rest["next"] is None
    whole = quant_client.get(ENTITLEMENTS).json()
    assert [e["dataset"] for e in whole["results"]] == ["P2", "P1", "P0"]
    assert whole["next"] is None
