import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from accounts.models import Role
from catalog.models import Dataset
from config.celery import app as celery_app
from core.periodic import schedules_install
from entitlements import services, tasks
from entitlements.models import Grant, GrantChange
from entitlements.schedules import PERIODIC_TASKS
from tests.entitlements.conftest import ACCESS_REQUESTS, OPS_GRANTS, events, recipient_ids
from tests.factories import AccountFactory, GrantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def quant(db):
    return AccountFactory(role=Role.QUANT)


def trial(quant, ends_in: timedelta, frequency: str = "1h") -> Grant:
    now = timezone.now()
    return GrantFactory(
        account=quant,
        dataset=Dataset.objects.get(symbol="BTC"),
        frequency=frequency,
        starts_at=now - timedelta(days=7),
        expires_at=now + ends_in,
    )


def test_expiry_sweep_marks_a_trial_expired_exactly_at_its_end(catalog, quant):
    grant = trial(quant, timedelta(hours=2))
    assert services.grants_expire_due(now=grant.expires_at - timedelta(microseconds=1)) == 0
    assert services.grants_expire_due(now=grant.expires_at) == 1
    grant.refresh_from_db()
    assert grant.status == "expired"
    [change] = GrantChange.objects.filter(grant=grant)
    assert (change.action, change.actor_user, change.actor_account) == ("expired", None, None)
    [event] = events("access_grant.expired")
    assert event.data["id"] == grant.pk
    assert event.data["status"] == "expired"
    assert recipient_ids(event) == {quant.pk}
    # A second run finds nothing and tells nobody twice.
    assert services.grants_expire_due(now=grant.expires_at + timedelta(hours=1)) == 0
    assert len(events("access_grant.expired")) == 1


def test_expire_task_uses_the_clock_and_leaves_other_grants(catalog, quant):
    lapsed = trial(quant, -timedelta(seconds=1), "1h")
    running = trial(quant, timedelta(hours=1), "1d")
    permanent = GrantFactory(account=quant, dataset=Dataset.objects.get(symbol="ETH"), frequency="1d")
    assert tasks.grants_expire.apply().get() == 1
    statuses = dict(Grant.objects.values_list("pk", "status"))
    assert statuses == {lapsed.pk: "expired", running.pk: "active", permanent.pk: "active"}


def test_expiry_sweep_skips_rows_another_worker_holds(transactional_db, catalog):
    quant = AccountFactory(role=Role.QUANT)
    held = trial(quant, -timedelta(seconds=1), "1h")
    free = trial(quant, -timedelta(seconds=1), "1d")
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        try:
            with transaction.atomic():
                Grant.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    worker = threading.Thread(target=other_worker)
    worker.start()
    try:
        assert locked.wait(timeout=10)
        assert services.grants_expire_due() == 1  # does not wait for the held row
        assert Grant.objects.get(pk=free.pk).status == "expired"
        assert Grant.objects.get(pk=held.pk).status == "active"
    finally:
        release.set()
        worker.join(timeout=30)
    assert services.grants_expire_due() == 1
    assert len(events("access_grant.expired")) == 2


def test_expiring_notice_goes_out_once_inside_the_notice_window(catalog, quant, settings):
    settings.GRANT_EXPIRING_NOTICE = timedelta(hours=24)
    soon = trial(quant, timedelta(hours=23), "1h")
    trial(quant, timedelta(hours=25), "1d")
    assert tasks.grants_notify_expiring.apply().get() == 1
    [event] = events("access_grant.expiring")
    assert event.data["id"] == soon.pk
    assert 22 * 3600 < event.data["expires_in_seconds"] <= 23 * 3600
    assert recipient_ids(event) == {quant.pk}
    soon.refresh_from_db()
    assert soon.expiring_notified_at is not None
    assert tasks.grants_notify_expiring.apply().get() == 0
    assert len(events("access_grant.expiring")) == 1
    # The 25 h trial gets its notice once it is 24 h from its end.
    assert services.grants_notify_expiring(now=timezone.now() + timedelta(hours=1, seconds=1)) == 1
    assert len(events("access_grant.expiring")) == 2


def test_notice_window_is_configurable(catalog, quant, settings):
    settings.GRANT_EXPIRING_NOTICE = timedelta(hours=48)
    trial(quant, timedelta(hours=47))
    assert services.grants_notify_expiring() == 1


def test_a_changed_end_re_arms_the_notice(catalog, ops_client, settings):
    settings.GRANT_EXPIRING_NOTICE = timedelta(hours=24)
    quant = AccountFactory(role=Role.QUANT)
    grant = ops_client.post(
        OPS_GRANTS, {"account": quant.ref, "dataset": "BTC", "frequency": "1h", "trial_days": 1}
    ).json()
    assert services.grants_notify_expiring() == 1
    later = timezone.now() + timedelta(hours=30)
    ops_client.patch(f"{OPS_GRANTS}/{grant['id']}", {"expires_at": later.isoformat()})
    assert services.grants_notify_expiring() == 0  # 30 h away: not yet
    assert services.grants_notify_expiring(now=later - timedelta(hours=23)) == 1
    assert len(events("access_grant.expiring")) == 2


def test_expired_and_revoked_grants_get_no_notice(catalog, quant):
    revoked = trial(quant, timedelta(hours=2), "1h")
    services.grant_revoke(grant=revoked, actor=None, reason="Ended early")
    trial(quant, -timedelta(minutes=1), "1d")
    assert services.grants_notify_expiring() == 0


def test_schedules_are_declared_and_installed(db):
    schedules_install()
    for name, spec in PERIODIC_TASKS.items():
        task = PeriodicTask.objects.get(name=name)
        assert task.task == spec["task"]
        assert task.interval.every == 60
        assert spec["task"] in celery_app.tasks


# --- Ops email ------------------------------------------------------------------------


@pytest.fixture
def ops_emails(settings):
    settings.OPS_NOTIFICATION_EMAILS = ["ops@example.com", "oncall@example.com"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def test_pending_request_emails_ops_after_commit(
    quant_client, catalog, ops_emails, tasks_in_process, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = quant_client.post(ACCESS_REQUESTS, {"dataset": "BTC", "frequencies": ["1h"], "reason": "Research"})
    assert response.status_code == 201
    assert mailoutbox == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    [mail] = mailoutbox
    assert mail.to == ["ops@example.com", "oncall@example.com"]
    assert f"#{response.json()['id']}" in mail.subject
    assert quant_client.account.ref in mail.subject
    assert "Research" in mail.body
    assert f"/admin/entitlements/accessrequest/{response.json()['id']}/change/" in mail.body


def test_no_email_when_nothing_waits_for_ops(
    quant_client, auto_approve, ops_emails, tasks_in_process, mailoutbox, django_capture_on_commit_callbacks
):
    auto_approve("ETH", "1d")
    with django_capture_on_commit_callbacks(execute=True):
        response = quant_client.post(ACCESS_REQUESTS, {"dataset": "ETH", "frequencies": ["1d"]})
    assert response.json()["status"] == "approved"
    assert mailoutbox == []


def test_email_task_skips_a_request_cancelled_meanwhile(quant_client, catalog, ops_emails, mailoutbox):
    created = quant_client.post(ACCESS_REQUESTS, {"dataset": "BTC", "frequencies": ["1h"]}).json()
    quant_client.post(f"{ACCESS_REQUESTS}/{created['id']}/cancel")
    assert tasks.access_request_email_ops.apply(args=[created["id"]]).get() is False
    assert mailoutbox == []
