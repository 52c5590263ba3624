import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from accounts.models import Role
from catalog.models import Dataset
from core.errors import Conflict, FieldError
from entitlements import services
from entitlements.models import Grant, GrantChange
from entitlements.selectors import grant_effective_status, grant_in_force, grant_require, grants_in_force
from tests.entitlements.conftest import events
from tests.factories import AccountFactory, GrantFactory
from webhooks.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def btc(catalog):
    return Dataset.objects.get(symbol="BTC")


@pytest.fixture
def quant(db):
    return AccountFactory(role=Role.QUANT)


@pytest.fixture
def ops(db):
    return AccountFactory(role=Role.OPS)


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("ops-person", password="x", is_staff=True)


def test_policy_rule_order_suspension_first_then_cooldown_then_mode(btc, quant, ops, auto_approve):
    # Ops refused 1d earlier, then switched 1h and 1d to auto-approve: the cooldown beats auto-approve.
    first = services.access_request_create(account=quant, dataset=btc, frequencies=["1d"])
    services.access_request_refuse(request=first, actor=ops, reason="No")
    auto_approve("BTC", "1h")
    auto_approve("BTC", "1d")

    request = services.access_request_create(account=quant, dataset=btc, frequencies=["1h", "1d", "1mo"])
    rules = {item.frequency: (item.status, item.decision_rule) for item in request.items.all()}
    assert rules == {
        "1h": ("approved", "auto_approve"),
        "1d": ("refused", "refusal_cooldown"),
        "1mo": ("pending", "manual_review"),
    }
    assert request.status == "pending"

    # Suspension beats everything.
    services.access_request_cancel(request=request, actor=request.account)
    Grant.objects.update(status="revoked")
    quant.is_suspended = True
    quant.save()
    request = services.access_request_create(account=quant, dataset=btc, frequencies=["1h", "1mo"])
    assert {item.decision_rule for item in request.items.all()} == {"account_suspended"}
    assert request.status == "refused"


@pytest.mark.parametrize(
    ("decisions", "expected"),
    [
        ({"1h": "approve", "1d": "approve"}, "approved"),
        ({"1h": "approve", "1d": "refuse"}, "partially_approved"),
        ({"1h": "refuse", "1d": "refuse"}, "refused"),
        ({"1h": "refuse", "1d": "cancel"}, "refused"),
        ({"1h": "approve", "1d": "cancel"}, "partially_approved"),
        ({"1h": "cancel", "1d": "cancel"}, "cancelled"),
        ({"1h": "approve"}, "pending"),
    ],
)
def test_request_status_is_derived_from_its_items(btc, quant, ops, decisions, expected):
    request = services.access_request_create(account=quant, dataset=btc, frequencies=["1h", "1d"])
    for frequency, decision in decisions.items():
        if decision == "approve":
            services.access_request_approve(request=request, frequencies=[frequency], actor=ops)
    for frequency, decision in decisions.items():
        if decision == "refuse":
            services.access_request_refuse(request=request, frequencies=[frequency], actor=ops, reason="No")
    if "cancel" in decisions.values():
        services.access_request_cancel(request=request, actor=request.account)
    request.refresh_from_db()
    assert request.status == expected


def test_decisions_keep_who_when_and_why(btc, quant, ops, staff):
    request = services.access_request_create(account=quant, dataset=btc, frequencies=["1h", "1d"])
    services.access_request_approve(request=request, frequencies=["1h"], actor=staff, note="Known customer")
    services.access_request_refuse(request=request, frequencies=["1d"], actor=ops, reason="Daily not sold")
    hourly, daily = request.items.order_by("frequency").reverse()
    assert (hourly.frequency, hourly.decided_by_user, hourly.decided_by_account) == ("1h", staff, None)
    assert hourly.decision_note == "Known customer"
    assert hourly.decided_at is not None
    assert (daily.decided_by_user, daily.decided_by_account, daily.decision_note) == (None, ops, "Daily not sold")
    grant = Grant.objects.get()
    assert (grant.created_by_user, grant.item) == (staff, hourly)
    [change] = GrantChange.objects.all()
    assert (change.action, change.actor_user, change.reason) == ("created", staff, "Known customer")


def test_a_failed_approval_changes_nothing_and_publishes_nothing(btc, quant, ops):
    """Events are written in the decision's transaction: a rolled-back decision tells nobody."""
    request = services.access_request_create(account=quant, dataset=btc, frequencies=["1h", "1d"])
    before = Event.objects.count()
    GrantFactory(account=quant, dataset=btc, frequency="1d")  # appeared behind the services' back
    with pytest.raises(Conflict) as excinfo:
        services.access_request_approve(request=request, actor=ops)
    assert excinfo.value.code == "already_granted"
    assert Grant.objects.filter(frequency="1h").count() == 0
    assert set(request.items.values_list("status", flat=True)) == {"pending"}
    assert Event.objects.count() == before


def test_grants_in_force_at_the_exact_instant(btc, quant):
    end = timezone.now() + timedelta(hours=1)
    grant = GrantFactory(account=quant, dataset=btc, frequency="1h", expires_at=end)
    assert list(grants_in_force(at=end - timedelta(microseconds=1))) == [grant]
    assert list(grants_in_force(at=end)) == []
    assert grant_effective_status(grant, at=end - timedelta(microseconds=1)) == "active"
    assert grant_effective_status(grant, at=end) == "expired"


def test_revoke_ends_access_at_once(btc, quant, ops):
    grant = services.grant_create(account=quant, dataset=btc, frequency="1h", actor=ops)
    assert grant_in_force(account_id=quant.pk, dataset_id=btc.pk, frequency="1h") == grant
    services.grant_revoke(grant=grant, actor=ops, reason="Chargeback")
    assert grant_in_force(account_id=quant.pk, dataset_id=btc.pk, frequency="1h") is None
    with pytest.raises(Exception) as excinfo:
        grant_require(account=quant, dataset=btc, frequency="1h")
    assert excinfo.value.code == "not_entitled"


def test_grant_update_expiry_rules(btc, quant, ops):
    grant = services.grant_create(
        account=quant, dataset=btc, frequency="1h", actor=ops, expires_at=timezone.now() + timedelta(days=1)
    )
    grant.expiring_notified_at = timezone.now()
    grant.save()
    services.grant_update_expiry(grant=grant, expires_at=timezone.now() + timedelta(days=5), actor=ops)
    grant.refresh_from_db()
    assert grant.expiring_notified_at is None  # the notice is re-armed for the new end
    unchanged = GrantChange.objects.count()
    services.grant_update_expiry(grant=grant, expires_at=grant.expires_at, actor=ops)
    assert GrantChange.objects.count() == unchanged  # no-op, no audit noise
    with pytest.raises(FieldError):
        services.grant_update_expiry(grant=grant, expires_at=timezone.now(), actor=ops)


def test_expiry_resolve():
    now = timezone.now()
    assert services.grant_expiry_resolve(now=now) is None
    assert services.grant_expiry_resolve(trial_days=3, now=now) == now + timedelta(days=3)
    with pytest.raises(FieldError):
        services.grant_expiry_resolve(trial_days=3, expires_at=now + timedelta(days=1), now=now)
    with pytest.raises(FieldError):
        services.grant_expiry_resolve(trial_days=0, now=now)
    with pytest.raises(FieldError):
        services.grant_expiry_resolve(expires_at=now, now=now)


def test_direct_grant_for_another_role_or_unoffered_frequency_is_refused(catalog):
    eth = Dataset.objects.get(symbol="ETH")
    seller = AccountFactory(role=Role.SELLER)
    with pytest.raises(FieldError) as excinfo:
        services.grant_create(account=seller, dataset=eth, frequency="1d", actor=None)
    assert "account" in excinfo.value.extra["errors"]
    with pytest.raises(FieldError) as excinfo:
        services.grant_create(account=AccountFactory(role=Role.QUANT), dataset=eth, frequency="1h", actor=None)
    assert "frequency" in excinfo.value.extra["errors"]


def test_concurrent_direct_grants_give_one_grant_and_one_409(transactional_db, catalog):
    btc = Dataset.objects.get(symbol="BTC")
    quant = AccountFactory(role=Role.QUANT)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def grant():
        try:
            barrier.wait(timeout=10)
            services.grant_create(account=quant, dataset=btc, frequency="1h", actor=None)
            outcomes.append("granted")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=grant) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["already_granted", "granted"]
    assert Grant.objects.count() == 1
    assert len(events("access_grant.created")) == 1
