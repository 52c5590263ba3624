"""The audit log: one row per change Ops may have to explain later (who, when, what, why).

Every app's writing services record it inside the change's own transaction, with the actor
they take, whether the change came from the admin, the API or the system; the admin shows
it on each object's History page. Admin writes go through the same services.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import models
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


def audit_log(
    *,
    obj: models.Model,
    action: str,
    actor: Actor,
    message: str = "",
    reason: str = "",
    at: datetime | None = None,
) -> AuditEntry:
    """Record that ``actor`` did ``action`` to ``obj`` (``message`` says what changed, ``reason`` why)."""
    return AuditEntry.objects.create(
        at=at or timezone.now(),
        actor=audit_actor_label(actor),
        actor_user=actor if isinstance(actor, AbstractBaseUser) else None,  # type: ignore[misc]
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action=action,
        message=message,
        reason=reason,
    )


def audit_entries_for(obj: Any) -> QuerySet[AuditEntry]:
    """Every audit row of ``obj``, oldest first."""
    return AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False), object_id=str(obj.pk)
    ).order_by("at", "id")
