"""Who did something: an Ops account over the API, or a staff user in the admin.

Audit rows keep both as nullable foreign keys; exactly one is set for a human
decision, neither for the system (auto-decisions, schedules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from django.contrib.auth.models import AbstractBaseUser

if TYPE_CHECKING:
    from accounts.models import Account

Actor = Union["Account", AbstractBaseUser, None]


def actor_fields(actor: Actor, prefix: str) -> dict[str, Any]:
    """``{"<prefix>_user": ..., "<prefix>_account": ...}`` for an audit row."""
    from accounts.models import Account

    return {
        f"{prefix}_user": actor if isinstance(actor, AbstractBaseUser) else None,
        f"{prefix}_account": actor if isinstance(actor, Account) else None,
    }


def actor_label(user: Any, account: Any) -> str:
    if user is not None:
        return f"admin:{user.get_username()}"
    if account is not None:
        return f"ops:{account.ref}"
    return "system"
