"""Install the periodic tasks that apps declare in their ``schedules.py``
(a ``PERIODIC_TASKS`` dict: name -> {"task", "schedule", "kwargs"?, "queue"?,
"description"?}) into django-celery-beat's tables, idempotently, so they are
visible and editable in the admin. A schedule an operator has edited keeps the operator's timing; only
the task path and arguments are brought back in line with the code. Ops' edits in the admin go
through the services below, which audit them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from importlib import import_module
from typing import Any

from celery.schedules import crontab
from django.apps import apps
from django.db import transaction
from django.utils.module_loading import module_has_submodule

from core.actors import Actor
from core.audit import audit_log
from core.errors import FieldError


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


# --- Ops' edits of the schedules in the admin ----------------------------------------


def _schedule_text(task: Any) -> str:
    return str(task.crontab or task.interval or task.solar or task.clocked or "no schedule")


_BOOKKEEPING = {"id", "last_run_at", "total_run_count", "date_changed"}


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value in (None, ""):
        return "none"
    return repr(value) if isinstance(value, str) else str(value)


@transaction.atomic
def schedule_save(*, task: Any, created: bool, actor: Actor) -> Any:
    """Save a periodic task as edited in the admin; beat picks the change up on its next check."""
    from django_celery_beat.models import PeriodicTask

    if created:
        task.save()
        audit_log(obj=task, action="created", actor=actor, message=f"{task.task} on {_schedule_text(task)}.")
        return task
    stored = PeriodicTask.objects.get(pk=task.pk)
    fields = [
        field.name
        for field in PeriodicTask._meta.concrete_fields
        if field.name not in _BOOKKEEPING and getattr(stored, field.name) != getattr(task, field.name)
    ]
    task.save()
    if fields:
        message = "; ".join(
            f"{field} {_value_text(getattr(stored, field))} -> {_value_text(getattr(task, field))}" for field in fields
        )
        audit_log(obj=task, action="changed", actor=actor, message=message + ".")
    return task


@transaction.atomic
def schedule_delete(*, task: Any, actor: Actor) -> None:
    """Remove a periodic task (one declared in code comes back at the next install)."""
    audit_log(obj=task, action="deleted", actor=actor, message=f"{task.task}.")
    task.delete()


@transaction.atomic
def schedules_enable(*, tasks: Iterable[Any], enabled: bool | None, actor: Actor) -> int:
    """Enable or disable periodic tasks (``enabled=None`` flips each); returns how many changed."""
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    count = 0
    for task in tasks:
        turn_on = (not task.enabled) if enabled is None else enabled
        if task.enabled == turn_on:
            continue
        fields: dict[str, Any] = {"enabled": turn_on} if turn_on else {"enabled": False, "last_run_at": None}
        PeriodicTask.objects.filter(pk=task.pk).update(**fields)
        audit_log(obj=task, action="enabled" if turn_on else "disabled", actor=actor, message=f"{task.task}.")
        count += 1
    PeriodicTasks.update_changed()
    return count


@transaction.atomic
def schedules_run(*, tasks: Iterable[Any], actor: Actor) -> int:
    """Send periodic tasks now, out of schedule, with their arguments (e.g. a price sync); returns how many.

    Every task must be one the workers know, else nothing is sent.
    """
    from celery import current_app

    tasks = list(tasks)
    current_app.loader.import_default_modules()
    unknown = [task.task for task in tasks if task.task not in current_app.tasks]
    if unknown:
        raise FieldError("task", f"Not a registered task: {', '.join(unknown)}.")
    for task in tasks:
        audit_log(obj=task, action="run now", actor=actor, message=f"{task.task} sent out of schedule.")
        options: dict[str, Any] = {"headers": {"periodic_task_name": task.name}}
        if task.queue:
            options["queue"] = task.queue
        transaction.on_commit(
            partial(
                current_app.send_task, task.task, args=json.loads(task.args), kwargs=json.loads(task.kwargs), **options
            )
        )
    return len(tasks)
