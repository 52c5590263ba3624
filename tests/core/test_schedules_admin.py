"""Ops' writes on the periodic task pages go through core.periodic's services: a schedule edited,
paused or run out of schedule (a price sync now) is audited and shows in the task's History."""

import json

import pytest
import redis
from django_celery_beat.models import PeriodicTask

from tests.history import admin_history, audited

pytestmark = pytest.mark.django_db

TASKS = "/admin/django_celery_beat/periodictask/"


def test_ops_run_a_price_sync_now_and_it_is_audited_and_sent(
    admin_client, admin_user, settings, django_capture_on_commit_callbacks
):
    task = PeriodicTask.objects.get(name="pricing.sync-prices-1h")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(TASKS, {"action": "run_tasks", "_selected_action": [task.pk]})

    assert response.status_code == 302
    sent = [
        message
        for message in broker.lrange("pricing", 0, -1)
        if json.loads(message)["headers"].get("periodic_task_name") == task.name
    ]
    for message in sent:
        broker.lrem("pricing", 0, message)
    assert [json.loads(message)["headers"]["task"] for message in sent] == ["pricing.tasks.prices_sync"]
    admin = f"admin:{admin_user.username}"
    assert audited(task) == [(admin, "run now", "pricing.tasks.prices_sync sent out of schedule.", "")]
    assert [row[1:4] for row in admin_history(admin_client, "django_celery_beat_periodictask", task.pk)] == [
        [admin, "run now", "pricing.tasks.prices_sync sent out of schedule."]
    ]


def test_ops_pause_and_resume_a_schedule_and_it_is_audited(admin_client, admin_user):
    task = PeriodicTask.objects.get(name="pricing.backfill-market-caps")

    admin_client.post(TASKS, {"action": "disable_tasks", "_selected_action": [task.pk]})
    admin_client.post(TASKS, {"action": "disable_tasks", "_selected_action": [task.pk]})  # already: nothing
    admin_client.post(TASKS, {"action": "toggle_tasks", "_selected_action": [task.pk]})

    task.refresh_from_db()
    assert task.enabled
    admin = f"admin:{admin_user.username}"
    assert audited(task) == [
        (admin, "disabled", "pricing.tasks.market_caps_backfill.", ""),
        (admin, "enabled", "pricing.tasks.market_caps_backfill.", ""),
    ]


def test_a_schedule_edited_in_the_admin_says_what_changed(admin_client, admin_user):
    task = PeriodicTask.objects.get(name="pricing.backfill-market-caps")
    form = {
        "name": task.name,
        "regtask": task.task,
        "task": "",
        "enabled": "on",
        "description": "Later in the evening.",
        "crontab": task.crontab_id,
        "start_time_0": "",
        "start_time_1": "",
        "args": task.args,
        "kwargs": task.kwargs,
        "expires_0": "",
        "expires_1": "",
        "queue": task.queue or "",
        "exchange": "",
        "routing_key": "",
        "headers": task.headers,
        "priority": "",
        "expire_seconds": "",
    }

    response = admin_client.post(f"{TASKS}{task.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[-2000:]
    old = PeriodicTask.objects.get(pk=task.pk)
    assert old.description == "Later in the evening."
    assert audited(task) == [
        (f"admin:{admin_user.username}", "changed", f"description {task.description!r} -> 'Later in the evening.'.", "")
    ]
