from __future__ import annotations

from datetime import datetime
from typing import cast

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, AccountAPIKey, Role
from core.actors import Actor
from core.audit import audit_log
from core.errors import Conflict, FieldError


def _yes_no(value: object) -> str:
    return "yes" if value else "no"


_ACCOUNT_FIELD_LABELS = {"name": "name", "email": "email", "is_active": "active", "is_suspended": "suspended"}


@transaction.atomic
def account_create(
    *,
    ref: str,
    name: str,
    role: str,
    email: str = "",
    is_active: bool = True,
    is_suspended: bool = False,
    actor: Actor,
) -> Account:
    """Create an account; a ref is unique across all roles and never reused."""
    if role not in Role.values:
        raise FieldError("role", f"Must be one of: {', '.join(Role.values)}.")
    account = Account(ref=ref, name=name or ref, role=role, email=email, is_active=is_active, is_suspended=is_suspended)
    account.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError:
        raise Conflict(f"An account with ref '{ref}' already exists.", code="account_exists", ref=ref) from None
    flags = [label for label, on in (("inactive", not is_active), ("suspended", is_suspended)) if on]
    audit_log(
        obj=account,
        action="created",
        actor=actor,
        message=f"{role} account {ref} ({account.name}){''.join(', ' + flag for flag in flags)}.",
    )
    return account


@transaction.atomic
def account_update(*, account: Account, actor: Actor, **fields: object) -> Account:
    """Change an account's name, email, activity or suspension; ref and role are fixed.
    Only a real change is written and audited."""
    allowed = {"name", "email", "is_active", "is_suspended"}
    changed = [field for field in fields if field in allowed and getattr(account, field) != fields[field]]
    before = {field: getattr(account, field) for field in changed}
    for field in changed:
        setattr(account, field, fields[field])
    if changed:
        account.full_clean(validate_unique=False)
        account.save(update_fields=[*changed, "updated_at"])
        audit_log(obj=account, action="changed", actor=actor, message=_changes_text(account, before))
    return account


def _changes_text(account: Account, before: dict[str, object]) -> str:
    parts = []
    for field, old in before.items():
        new = getattr(account, field)
        if field in ("is_active", "is_suspended"):
            old, new = _yes_no(old), _yes_no(new)
        else:
            old, new = repr(old), repr(new)
        parts.append(f"{_ACCOUNT_FIELD_LABELS[field]} {old} -> {new}")
    return "; ".join(parts) + "."


@transaction.atomic
def account_delete(*, account: Account, actor: Actor) -> None:
    """Delete an account with its API keys (what the admin's delete offers); kept in the audit trail."""
    audit_log(obj=account, action="deleted", actor=actor, message=f"{account.role} account {account.ref}.")
    account.delete()


@transaction.atomic
def account_get_or_create(*, ref: str, role: str, name: str = "", actor: Actor = None) -> tuple[Account, bool]:
    """Return the account ``ref``, creating it with ``role`` when missing.

    An existing account must already have that role: roles never change silently.
    """
    account = Account.objects.filter(ref=ref).first()
    if account is None:
        return account_create(ref=ref, name=name or ref, role=role, actor=actor), True
    if account.role != role:
        raise Conflict(
            f"Account '{ref}' exists with role '{account.role}', not '{role}'.",
            code="role_mismatch",
        )
    return account, False


@transaction.atomic
def api_key_create(
    *, account: Account, name: str, expires_at: datetime | None = None, actor: Actor = None, reason: str = ""
) -> tuple[AccountAPIKey, str]:
    """Issue a new key for ``account``; the clear key is returned here and never again."""
    if expires_at is not None and expires_at <= timezone.now():
        raise FieldError("expires_at", "Must be in the future.")
    created, key = AccountAPIKey.objects.create_key(
        account=account, name=(name or "default")[:50], expiry_date=expires_at
    )
    api_key = cast(AccountAPIKey, created)
    ends = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    audit_log(
        obj=api_key,
        action="created",
        actor=actor,
        message=f"Key {api_key.prefix} ({api_key.name}) for {account.ref} ({account.role}){ends}.",
        reason=reason,
    )
    return api_key, key


@transaction.atomic
def api_key_revoke(*, api_key: AccountAPIKey, actor: Actor = None, reason: str = "") -> AccountAPIKey:
    """Revoke a key for good; revoking twice is harmless."""
    if not api_key.revoked:
        api_key.revoked = True
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked", "revoked_at"])
        audit_log(
            obj=api_key,
            action="revoked",
            actor=actor,
            message=f"Key {api_key.prefix} of {api_key.account.ref} revoked.",
            reason=reason,
            at=api_key.revoked_at,
        )
    return api_key


@transaction.atomic
def api_key_update(*, api_key: AccountAPIKey, name: str, expires_at: datetime | None, actor: Actor) -> AccountAPIKey:
    """Rename a key or change when it expires; only a real change is written and audited."""
    changes = []
    if name != api_key.name:
        changes.append(f"name {api_key.name!r} -> {name!r}")
    if expires_at != api_key.expiry_date:
        changes.append(f"expires {_expiry_text(api_key.expiry_date)} -> {_expiry_text(expires_at)}")
    if changes:
        api_key.name, api_key.expiry_date = name, expires_at
        api_key.save(update_fields=["name", "expiry_date"])
        audit_log(
            obj=api_key,
            action="changed",
            actor=actor,
            message=f"Key {api_key.prefix} of {api_key.account.ref}: {'; '.join(changes)}.",
        )
    return api_key


def _expiry_text(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "never"


@transaction.atomic
def api_key_delete(*, api_key: AccountAPIKey, actor: Actor) -> None:
    """Delete a key (what the admin's delete offers; revoking keeps it on record instead)."""
    audit_log(obj=api_key, action="deleted", actor=actor, message=f"Key {api_key.prefix} of {api_key.account.ref}.")
    api_key.delete()


@transaction.atomic
def account_role_change(*, account: Account, role: str, actor: Actor, reason: str = "") -> Account:
    """Give an account another role (who may do so is the caller's check); kept in the audit trail."""
    if role not in Role.values:
        raise FieldError("role", f"Must be one of: {', '.join(Role.values)}.")
    old = account.role
    if old == role:
        return account
    account.role = role
    account.save(update_fields=["role", "updated_at"])
    audit_log(obj=account, action="role changed", actor=actor, message=f"Role {old} -> {role}.", reason=reason)
    return account


def api_key_mark_used(*, api_key: AccountAPIKey, now: datetime) -> bool:
    """Record that ``api_key`` was used at ``now``, at most one write per key per minute across
    every process: the row is only written when its ``last_used_at`` is a minute old or unset.
    Returns whether this call wrote it."""
    from django.db.models import Q

    from accounts.selectors import LAST_USED_EVERY

    written = (
        AccountAPIKey.objects.filter(pk=api_key.pk)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY))
        .update(last_used_at=now)
    )
    # Cached copies see the new value too, so this process does not try again for a minute.
    api_key.last_used_at = now
    return bool(written)
