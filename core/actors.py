"""Who did something: an Ops account over the API, or a staff user in the admin.

Audit rows keep both as nullable foreign keys; exactly one is set for a human
decision, neither for the system (auto-decisions, schedules).
"""

from __future__ import annotations

from typing import Any, Protocol

from django.contrib.auth.models import AbstractBaseUser


class AccountActor(Protocol):
    """What an audit row needs of an ``accounts.Account`` (core sits below accounts and does not import it)."""

    @property
    def ref(self) -> str: ...

    @property
    def role(self) -> str: ...


Actor = AccountActor | AbstractBaseUser | None


def actor_fields(actor: Actor, prefix: str) -> dict[str, Any]:
    """``{"<prefix>_user": ..., "<prefix>_account": ...}`` for an audit row."""
    is_user = isinstance(actor, AbstractBaseUser)
    return {
        f"{prefix}_user": actor if is_user else None,
        f"{prefix}_account": actor if actor is not None and not is_user else None,
    }


def actor_label(user: Any, account: Any) -> str:
    if user is not None:
        return f"admin:{user.get_username()}"
    if account is not None:
        return f"ops:{account.ref}"
    return "system"
