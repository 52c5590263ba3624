import json
from datetime import timedelta

from django_celery_beat.models import PeriodicTask

from core.periodic import schedules_install
from webhooks import tasks


def test_the_sweeper_is_installed_every_five_seconds_on_the_webhooks_queue(db):
    schedules_install()
    sweeper = PeriodicTask.objects.get(task="webhooks.tasks.webhooks_sweep")
    assert sweeper.interval.every == 5
    assert sweeper.interval.period == "seconds"
    assert sweeper.queue == "webhooks"
    assert json.loads(sweeper.kwargs) == {}
    assert tasks.webhooks_sweep.name == sweeper.task


def test_the_sweeper_task_reports_what_it_did(db, buyer_client, publish, settings):
    # Run in-process, the way beat's message is executed by a worker; nothing to send, one event to fan out.
    settings.WEBHOOKS_SWEEP_GRACE = timedelta(seconds=0)  # the event is not left to a fast path
    publish(buyer_client.account)
    assert tasks.webhooks_sweep() == {"dispatched": 1, "claimed": 0}
    assert tasks.webhooks_sweep() == {"dispatched": 0, "claimed": 0}
