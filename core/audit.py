"""The audit log: one row per change Ops may have to explain later (who, when, what, why).

Every app's writing services record it inside the change's own transaction, with the actor
they take, whether the change came from the admin, the API or the system; the admin shows
it on each object's History page. Admin writes go through the same services.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from core.actors import Actor
from core.models import AuditEntry


def audit_actor_label(actor: Actor) -> str:
    """``admin:<username>`` for a staff user, ``<role>:<ref>`` for an account, ``system`` for neither."""
    if isinstance(actor, AbstractBaseUser):
        return f"admin:{actor.get_username()}"
    if actor is not None:
        return f"{actor.role}:{actor.ref}"
    return "system"


def admin_actor(request: HttpRequest) -> AbstractBaseUser:
    """The staff user behind an admin request, as the actor its writes are audited with."""
    assert isinstance(request.user, AbstractBaseUser)  # the admin only serves logged-in staff
    return request.user


_ENTRY_FIELDS = ("at", "actor", "actor_user", "content_type", "object_id", "object_repr", "action", "message", "reason")


@functools.cache
def _entry_fields() -> list[models.Field[Any, Any]]:
    by_name = {field.name: field for field in AuditEntry._meta.concrete_fields}
    return [by_name[name] for name in _ENTRY_FIELDS]


@functools.cache
def _entry_insert_sql() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _entry_fields())
    placeholders = ", ".join(["%s"] * len(_ENTRY_FIELDS))
    return f"INSERT INTO {quote(AuditEntry._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608


def audit_log(
    *,
    obj: models.Model,
    action: str,
    actor: Actor,
    message: str = "",
    reason: str = "",
    at: datetime | None = None,
) -> None:
    """Record that ``actor`` did ``action`` to ``obj`` (``message`` says what changed, ``reason`` why).

    Every write pays for it, so it is one fixed statement rather than a model save."""
    values = (
        at or timezone.now(),
        audit_actor_label(actor),
        actor.pk if isinstance(actor, AbstractBaseUser) else None,
        ContentType.objects.get_for_model(obj, for_concrete_model=False).pk,
        str(obj.pk),
        str(obj)[:200],
        action,
        message,
        reason,
    )
    params = [field.get_db_prep_save(value, connection) for field, value in zip(_entry_fields(), values, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(_entry_insert_sql(), params)


def audit_entries_for(obj: Any) -> QuerySet[AuditEntry]:
    """Every audit row of ``obj``, oldest first."""
    return AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False), object_id=str(obj.pk)
    ).order_by("at", "id")
