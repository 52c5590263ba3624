from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from accounts.models import Role
from catalog.models import Dataset
from entitlements import services
from entitlements.models import AccessRequest, AccessRequestItem, Grant, GrantChange
from tests.entitlements.conftest import events
from tests.factories import AccountFactory, GrantFactory

pytestmark = pytest.mark.django_db

REQUESTS = "/admin/entitlements/accessrequest/"
ITEMS = "/admin/entitlements/accessrequestitem/"
GRANTS = "/admin/entitlements/grant/"


@pytest.fixture
def ask(catalog):
    """Create an access request through the service, as the API does."""

    def _ask(ref: str = "alice", symbol: str = "BTC", frequencies=("1h", "1d")) -> AccessRequest:
        account = AccountFactory(ref=ref, role=Role.QUANT)
        return services.access_request_create(
            account=account, dataset=Dataset.objects.get(symbol=symbol), frequencies=list(frequencies)
        )

    return _ask


def action(client, url, name, ids, **fields):
    return client.post(url, {"action": name, "_selected_action": [str(i) for i in ids], **fields})


def message_texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_admin_index_opens_on_the_pending_queue(admin_client, ask):
    oldest = ask("alice")
    ask("bob", "ETH", ("1d",))
    decided = ask("carol", "BTC", ("1mo",))
    services.access_request_refuse(request=decided, actor=None, reason="No")
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<span id="pending-access-request-count">2</span>' in html
    assert html.index("pending-access-requests") < html.index("app-accounts")  # the queue comes first
    assert f"/admin/entitlements/accessrequest/{oldest.pk}/change/" in html


def test_request_changelist_defaults_to_pending_oldest_first(admin_client, ask):
    first = ask("alice")
    second = ask("bob", "ETH", ("1d",))
    third = ask("carol", "BTC", ("1mo",))
    services.access_request_approve(request=second, actor=None)
    response = admin_client.get(REQUESTS)
    assert response.status_code == 200
    assert [r.pk for r in response.context["cl"].result_list] == [first.pk, third.pk]
    everything = admin_client.get(REQUESTS, {"status": "all"}).context["cl"].result_list
    assert [r.pk for r in everything] == [first.pk, second.pk, third.pk]
    approved = admin_client.get(REQUESTS, {"status": "approved"}).context["cl"].result_list
    assert [r.pk for r in approved] == [second.pk]
    # filters and search
    btc = Dataset.objects.get(symbol="BTC")
    assert [r.pk for r in admin_client.get(REQUESTS, {"dataset__id__exact": btc.pk}).context["cl"].result_list] == [
        first.pk,
        third.pk,
    ]
    assert [r.pk for r in admin_client.get(REQUESTS, {"frequency": "1mo"}).context["cl"].result_list] == [third.pk]
    assert [r.pk for r in admin_client.get(REQUESTS, {"q": "carol"}).context["cl"].result_list] == [third.pk]
    account_filter = {"account__id__exact": first.account_id, "status": "all"}
    assert [r.pk for r in admin_client.get(REQUESTS, account_filter).context["cl"].result_list] == [first.pk]


def test_bulk_approve_records_the_admin_user(admin_client, admin_user, ask):
    first, second = ask("alice"), ask("bob", "ETH", ("1d",))
    response = action(admin_client, REQUESTS, "approve_requests", [first.pk, second.pk])
    assert response.status_code == 302
    assert set(AccessRequest.objects.values_list("status", flat=True)) == {"approved"}
    assert Grant.objects.count() == 3
    for item in AccessRequestItem.objects.all():
        assert item.decided_by_user == admin_user
        assert item.decided_by_account is None
    assert set(GrantChange.objects.values_list("actor_user", flat=True)) == {admin_user.pk}
    assert len(events("access_request.decided")) == 2
    assert any("Approved 2" in text for text in message_texts(response))


def test_approve_as_trial_shows_a_form_then_applies_it(admin_client, ask):
    request = ask("alice")
    response = action(admin_client, REQUESTS, "approve_requests_trial", [request.pk])
    assert response.status_code == 200
    assert "Trial length" in response.content.decode()
    assert Grant.objects.count() == 0

    # Neither a length nor an end: the form says so and nothing happens.
    response = action(admin_client, REQUESTS, "approve_requests_trial", [request.pk], apply="1")
    assert response.status_code == 200
    assert "Give a trial length in days or an end date." in response.content.decode()
    assert Grant.objects.count() == 0

    before = timezone.now()
    response = action(
        admin_client, REQUESTS, "approve_requests_trial", [request.pk], apply="1", trial_days="5", note="POC"
    )
    assert response.status_code == 302
    grants = list(Grant.objects.all())
    assert len(grants) == 2
    for grant in grants:
        assert before + timedelta(days=5) <= grant.expires_at <= timezone.now() + timedelta(days=5)
        assert grant.note == "POC"


def test_approve_as_trial_with_an_end_date(admin_client, ask):
    request = ask("alice", "ETH", ("1d",))
    end = (timezone.now() + timedelta(days=10)).replace(second=0, microsecond=0)
    response = action(
        admin_client,
        REQUESTS,
        "approve_requests_trial",
        [request.pk],
        apply="1",
        expires_at=end.strftime("%Y-%m-%d %H:%M"),
    )
    assert response.status_code == 302
    assert Grant.objects.get().expires_at == end


def test_refuse_requires_a_reason(admin_client, admin_user, ask):
    request = ask("alice")
    response = action(admin_client, REQUESTS, "refuse_requests", [request.pk], apply="1", reason="  ")
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    request.refresh_from_db()
    assert request.status == "pending"
    response = action(admin_client, REQUESTS, "refuse_requests", [request.pk], apply="1", reason="Not a customer")
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == "refused"
    for item in request.items.all():
        assert (item.decision_note, item.decided_by_user) == ("Not a customer", admin_user)


def test_single_items_are_decided_on_their_own(admin_client, ask):
    request = ask("alice", "BTC", ("1h", "1d", "1mo"))
    hourly, daily, monthly = request.items.order_by("id")
    response = admin_client.get(ITEMS)
    assert {i.pk for i in response.context["cl"].result_list} == {hourly.pk, daily.pk, monthly.pk}
    assert action(admin_client, ITEMS, "approve_items", [hourly.pk]).status_code == 302
    response = action(admin_client, ITEMS, "refuse_items", [daily.pk], apply="1", reason="Hourly is enough")
    assert response.status_code == 302
    response = action(admin_client, ITEMS, "approve_items_trial", [monthly.pk], apply="1", trial_days="3")
    assert response.status_code == 302
    statuses = dict(request.items.values_list("frequency", "status"))
    assert statuses == {"1h": "approved", "1d": "refused", "1mo": "approved"}
    request.refresh_from_db()
    assert request.status == "partially_approved"
    assert Grant.objects.get(frequency="1mo").expires_at is not None
    assert Grant.objects.get(frequency="1h").expires_at is None


def test_request_page_shows_reason_account_grants_and_past_requests(admin_client, ask):
    earlier = ask("alice", "ETH", ("1d",))
    services.access_request_refuse(request=earlier, actor=None, reason="Not this quarter")
    account = earlier.account
    account.name = "Alice Research"
    account.save()
    request = services.access_request_create(
        account=account, dataset=Dataset.objects.get(symbol="BTC"), frequencies=["1h", "1d"], reason="Backtest 2024"
    )
    services.access_request_approve(request=request, frequencies=["1h"], actor=None, note="ok")
    response = admin_client.get(f"{REQUESTS}{request.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="request-reason">Backtest 2024<' in html
    assert "Alice Research" in html and "(alice, Quant)" in html
    grant = Grant.objects.get()
    assert f"/admin/entitlements/grant/{grant.pk}/change/" in html  # its current grants
    assert f"/admin/entitlements/accessrequest/{earlier.pk}/change/" in html  # its past requests
    assert "Not this quarter" in html
    # Controls only for the pending item; no do-nothing Save button.
    assert "Approve 1d" in html and "Trial 1d" in html and "Refuse 1d" in html
    assert "Approve 1h" not in html
    assert 'name="_save"' not in html


def decide(client, request, **fields):
    return client.post(f"{REQUESTS}{request.pk}/decide/", fields, follow=True)


def test_each_item_is_decided_from_the_request_page_with_one_post(admin_client, admin_user, ask):
    request = ask("alice", "BTC", ("1h", "1d", "1mo"))
    items = {item.frequency: item for item in request.items.all()}
    before = timezone.now()
    response = decide(admin_client, request, item=items["1h"].pk, decision="trial", trial_days=7)
    assert response.redirect_chain[-1][0] == f"{REQUESTS}{request.pk}/change/"
    assert any("Approved" in t and "as a trial until" in t for t in message_texts(response))
    decide(admin_client, request, item=items["1d"].pk, decision="refuse", reason="Daily is sold out")
    decide(admin_client, request, item=items["1mo"].pk, decision="approve", note="Known customer")
    statuses = dict(request.items.values_list("frequency", "status"))
    assert statuses == {"1h": "approved", "1d": "refused", "1mo": "approved"}
    trial = Grant.objects.get(frequency="1h")
    assert timedelta(days=7) <= trial.expires_at - before <= timedelta(days=7, minutes=1)
    assert Grant.objects.get(frequency="1mo").expires_at is None
    refused = request.items.get(frequency="1d")
    assert (refused.decided_by_user, refused.decision_note) == (admin_user, "Daily is sold out")


def test_a_trial_to_an_end_date_and_every_pending_item_at_once(admin_client, ask):
    request = ask("alice")
    end = (timezone.now() + timedelta(days=20)).date()
    decide(admin_client, request, decision="trial", trial_days=7, expires_on=end.isoformat())
    assert {g.expires_at.date() for g in Grant.objects.all()} == {end}  # the date wins over the prefilled days
    assert Grant.objects.count() == 2


def test_a_decision_form_error_speaks_in_labels_and_changes_nothing(admin_client, ask):
    request = ask("alice")
    item = request.items.first()
    response = decide(admin_client, request, item=item.pk, decision="refuse", reason="  ")
    assert any(t.startswith("Nothing decided. Reason: Say why") for t in message_texts(response))
    response = decide(admin_client, request, item=item.pk, decision="trial", trial_days=0)
    [text] = message_texts(response)
    assert "Trial length (days):" in text and "trial_days" not in text
    assert set(request.items.values_list("status", flat=True)) == {"pending"}


def test_queue_shows_reason_account_name_and_waiting_oldest_first(admin_client, ask):
    first = ask("alice")
    AccessRequest.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=30))
    second = ask("bob", "ETH", ("1d",))
    second.account.name = "Bob Capital"
    second.account.save()
    AccessRequest.objects.filter(pk=second.pk).update(reason="Need ETH daily for a factor model")
    html = admin_client.get(REQUESTS).content.decode()
    assert "Bob Capital" in html and "Need ETH daily for a factor model" in html
    assert "30 h" in html
    assert html.index(f"{REQUESTS}{first.pk}/change/") < html.index(f"{REQUESTS}{second.pk}/change/")


def test_the_action_form_says_which_items_it_decides(admin_client, ask):
    request = ask("alice")
    response = action(admin_client, REQUESTS, "refuse_requests", [request.pk])
    assert "BTC 1h, 1d" in response.content.decode()
    assert f"Request #{request.pk} from" in response.content.decode()


def test_a_decision_that_lost_the_race_gets_a_clear_message(admin_client, ask):
    decided, pending = ask("alice"), ask("bob", "ETH", ("1d",))
    services.access_request_refuse(request=decided, actor=None, reason="Another Ops said no")
    response = action(admin_client, REQUESTS, "approve_requests", [decided.pk, pending.pk])
    assert response.status_code == 302
    texts = message_texts(response)
    assert any(f"#{decided.pk}: not changed." in t and "nothing left to decide" in t for t in texts)
    decided.refresh_from_db()
    pending.refresh_from_db()
    assert (decided.status, pending.status) == ("refused", "approved")
    assert Grant.objects.filter(account=decided.account).count() == 0


# --- grants ---------------------------------------------------------------------------


@pytest.fixture
def grants(catalog):
    btc, eth = Dataset.objects.get(symbol="BTC"), Dataset.objects.get(symbol="ETH")
    alice = AccountFactory(ref="alice", role=Role.QUANT)
    now = timezone.now()
    return {
        "active": services.grant_create(
            account=alice, dataset=btc, frequency="1h", actor=None, expires_at=now + timedelta(days=2)
        ),
        "expired": GrantFactory(
            account=alice, dataset=btc, frequency="1d", starts_at=now - timedelta(days=3), expires_at=now
        ),
        "revoked": GrantFactory(account=alice, dataset=eth, frequency="1d", status="revoked", revoked_at=now),
    }


@pytest.mark.parametrize("status", ["active", "expired", "revoked"])
def test_grant_status_filters(admin_client, grants, status):
    response = admin_client.get(GRANTS, {"status": status})
    assert response.status_code == 200
    assert [g.pk for g in response.context["cl"].result_list] == [grants[status].pk]


def test_revoke_grants_with_a_reason_form(admin_client, admin_user, grants):
    grant = grants["active"]
    response = action(admin_client, GRANTS, "revoke_grants", [grant.pk])
    assert response.status_code == 200
    assert 'name="reason"' in response.content.decode()
    response = action(admin_client, GRANTS, "revoke_grants", [grant.pk], apply="1", reason="Contract ended")
    assert response.status_code == 302
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason, grant.revoked_by_user) == ("revoked", "Contract ended", admin_user)
    assert len(events("access_grant.revoked")) == 1
    # Revoking an expired grant is refused with a message, not a crash.
    response = action(admin_client, GRANTS, "revoke_grants", [grants["expired"].pk], apply="1", reason="x")
    assert any("is expired" in t for t in message_texts(response))


def test_extend_grants(admin_client, admin_user, grants):
    grant = grants["active"]
    old_end = grant.expires_at
    response = action(admin_client, GRANTS, "extend_grants", [grant.pk])
    assert response.status_code == 200
    response = action(admin_client, GRANTS, "extend_grants", [grant.pk], apply="1", extend_days="7", reason="More")
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.expires_at == old_end + timedelta(days=7)
    change = GrantChange.objects.filter(grant=grant).last()
    assert (change.action, change.actor_user, change.old_expires_at, change.reason) == (
        "extended",
        admin_user,
        old_end,
        "More",
    )
    response = action(admin_client, GRANTS, "extend_grants", [grant.pk], apply="1", permanent="on")
    grant.refresh_from_db()
    assert grant.expires_at is None
    # Two choices at once is a form error.
    response = action(admin_client, GRANTS, "extend_grants", [grant.pk], apply="1", permanent="on", extend_days="1")
    assert response.status_code == 200
    assert "Choose exactly one" in response.content.decode()


def test_grant_page_shows_its_audit_trail_read_only(admin_client, admin_user, grants):
    grant = grants["active"]
    services.grant_revoke(grant=grant, actor=admin_user, reason="Chargeback")
    response = admin_client.get(f"{GRANTS}{grant.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Chargeback" in html
    assert f"admin:{admin_user.username}" in html
    assert "direct grant" in html
    assert 'name="changes-0-reason"' not in html


def test_grant_directly_in_the_admin(admin_client, admin_user, catalog):
    quant = AccountFactory(ref="dora", role=Role.QUANT)
    eth = Dataset.objects.get(symbol="ETH")
    response = admin_client.post(
        f"{GRANTS}add/",
        {"account": quant.pk, "dataset": eth.pk, "frequency": "1d", "trial_days": "14", "note": "Conference lead"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    grant = Grant.objects.get()
    assert (grant.account, grant.created_by_user, grant.note) == (quant, admin_user, "Conference lead")
    assert grant.expires_at is not None
    assert len(events("access_grant.created")) == 1


def test_a_refused_direct_grant_in_the_admin_says_why_and_creates_nothing(admin_client, catalog):
    quant = AccountFactory(ref="erin", role=Role.QUANT)
    eth = Dataset.objects.get(symbol="ETH")
    response = admin_client.post(
        f"{GRANTS}add/", {"account": quant.pk, "dataset": eth.pk, "frequency": "1h"}, follow=True
    )
    assert response.status_code == 200
    assert any("Nothing granted. Frequency: ETH has no 1h" in t for t in message_texts(response))
    assert Grant.objects.count() == 0
