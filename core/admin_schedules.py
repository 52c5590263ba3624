"""django-celery-beat's periodic task admin, with every write going through ``core.periodic``'s
services so that Ops' schedule edits, pauses and out-of-schedule runs are in the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from core import periodic
from core.admin import AuditHistoryMixin
from core.audit import admin_actor
from core.errors import ProblemError

admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class AuditedPeriodicTaskAdmin(AuditHistoryMixin, PeriodicTaskAdmin):
    def save_model(self, request: HttpRequest, obj: PeriodicTask, form: Any, change: bool) -> None:
        periodic.schedule_save(task=obj, created=not change, actor=admin_actor(request))

    def delete_model(self, request: HttpRequest, obj: PeriodicTask) -> None:
        periodic.schedule_delete(task=obj, actor=admin_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        for task in queryset:
            periodic.schedule_delete(task=task, actor=admin_actor(request))

    def _enable(self, request: HttpRequest, queryset: QuerySet[PeriodicTask], enabled: bool | None, done: str) -> None:
        count = periodic.schedules_enable(tasks=queryset, enabled=enabled, actor=admin_actor(request))
        self.message_user(request, f"{count} task(s) {done}.")

    @admin.action(description="Enable selected tasks")
    def enable_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self._enable(request, queryset, True, "enabled")

    @admin.action(description="Disable selected tasks")
    def disable_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self._enable(request, queryset, False, "disabled")

    @admin.action(description="Toggle activity of selected tasks")
    def toggle_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self._enable(request, queryset, None, "toggled")

    @admin.action(description="Run selected tasks")
    def run_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        try:
            count = periodic.schedules_run(tasks=queryset, actor=admin_actor(request))
        except ProblemError as exc:
            self.message_user(request, str(exc.detail), level=messages.ERROR)
            return
        self.message_user(request, f"{count} task(s) sent to run now.")
