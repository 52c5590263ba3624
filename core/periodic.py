"""Install the periodic tasks that apps declare in their ``schedules.py``
(a ``PERIODIC_TASKS`` dict: name -> {"task", "schedule", "kwargs"?, "queue"?,
"description"?}) into django-celery-beat's tables, idempotently, so they are
visible and editable in the admin. A schedule an operator has edited keeps the operator's timing; only
the task path and arguments are brought back in line with the code."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import import_module
from typing import Any

from celery.schedules import crontab
from django.apps import apps
from django.db import transaction
from django.utils.module_loading import module_has_submodule


def _schedule_fields(schedule: Any) -> dict[str, Any]:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule

    if isinstance(schedule, crontab):
        cron, _ = CrontabSchedule.objects.get_or_create(
            minute=schedule._orig_minute,
            hour=schedule._orig_hour,
            day_of_week=schedule._orig_day_of_week,
            day_of_month=schedule._orig_day_of_month,
            month_of_year=schedule._orig_month_of_year,
            timezone="UTC",
        )
        return {"crontab": cron, "interval": None}
    if isinstance(schedule, timedelta):
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=int(schedule.total_seconds()), period=IntervalSchedule.SECONDS
        )
        return {"interval": interval, "crontab": None}
    raise TypeError(f"Unsupported schedule {schedule!r}")


def schedules_declared() -> dict[str, dict[str, Any]]:
    """Every app's ``schedules.PERIODIC_TASKS``, merged."""
    declared: dict[str, dict[str, Any]] = {}
    for app_config in apps.get_app_configs():
        if module_has_submodule(app_config.module, "schedules"):
            module = import_module(f"{app_config.name}.schedules")
            declared.update(getattr(module, "PERIODIC_TASKS", {}))
    return declared


@transaction.atomic
def schedules_install() -> list[str]:
    """Create the declared periodic tasks that are missing; return their names."""
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    created = []
    for name, spec in schedules_declared().items():
        defaults = {
            "task": spec["task"],
            "kwargs": json.dumps(spec.get("kwargs", {})),
            "description": spec.get("description", ""),
        }
        if "queue" in spec:
            defaults["queue"] = spec["queue"]
        task = PeriodicTask.objects.filter(name=name).first()
        if task is None:
            PeriodicTask.objects.create(name=name, **defaults, **_schedule_fields(spec["schedule"]))
            created.append(name)
        else:
            changed = [field for field, value in defaults.items() if getattr(task, field) != value]
            if changed:
                for field in changed:
                    setattr(task, field, defaults[field])
                task.save(update_fields=changed)
    if created:
        PeriodicTasks.update_changed()
    return created
