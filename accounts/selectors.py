from __future__ import annotations

import functools
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import Account, AccountAPIKey
from core.db import cursor_or_default

# prefix -> (monotonic time loaded, the unrevoked key with its account). Per process.
_api_keys: dict[str, tuple[float, AccountAPIKey]] = {}
_API_KEYS_MAX = 10_000
LAST_USED_EVERY = timedelta(minutes=1)


def account_list() -> QuerySet[Account]:
    return Account.objects.all()


def account_get(*, ref: str) -> Account:
    return get_object_or_404(Account, ref=ref)


def api_key_list(*, account: Account) -> QuerySet[AccountAPIKey]:
    return AccountAPIKey.objects.filter(account=account).order_by("-created")


def api_key_get(*, account: Account, prefix: str) -> AccountAPIKey:
    return get_object_or_404(AccountAPIKey, account=account, prefix=prefix)


def accounts_with_role(*, role: str) -> QuerySet[Account]:
    return Account.objects.filter(role=role, is_active=True)


@functools.cache
def _api_key_statement() -> tuple[str, list[str], list[str]]:
    """One fixed statement for an unrevoked key and its account (every concrete column of
    both, key first, so no query is compiled per request), and the two models' field names
    in the order it reads them."""
    quote = connection.ops.quote_name
    key_meta, account_meta = AccountAPIKey._meta, Account._meta
    columns = [f"k.{quote(f.column)}" for f in key_meta.concrete_fields]
    columns += [f"a.{quote(f.column)}" for f in account_meta.concrete_fields]
    account_id = quote(key_meta.get_field("account").column)
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(key_meta.db_table)} k "  # noqa: S608 - names from the models
        f"JOIN {quote(account_meta.db_table)} a ON a.{quote(account_meta.pk.column)} = k.{account_id} "
        "WHERE k.prefix = %s AND NOT k.revoked"
    )
    return sql, [f.attname for f in key_meta.concrete_fields], [f.attname for f in account_meta.concrete_fields]


def _api_key_read(prefix: str, cursor: Any | None) -> AccountAPIKey | None:
    sql, key_fields, account_fields = _api_key_statement()
    with cursor_or_default(cursor) as cur:
        cur.execute(sql, [prefix])
        row = cur.fetchone()
    if row is None:
        return None
    api_key = AccountAPIKey.from_db("default", key_fields, row[: len(key_fields)])
    api_key.account = Account.from_db("default", account_fields, row[len(key_fields) :])
    return api_key


def api_key_for_authentication(*, prefix: str, cursor: Any | None = None) -> AccountAPIKey | None:
    """The unrevoked key with ``prefix`` and its account, as the database had it at most
    ``API_KEY_CACHE_TTL`` ago in this process (zero: always read now), read on ``cursor``
    when the caller brings one.

    A key revoked or an account deactivated elsewhere is refused by every process within
    that time; in the process that made the change, at once (see ``api_key_cache_forget``).
    Only keys that exist are kept, so unknown prefixes cannot grow the cache.
    """
    ttl = settings.API_KEY_CACHE_TTL.total_seconds()
    now = time.monotonic()
    entry = _api_keys.get(prefix)
    if entry is not None and now - entry[0] < ttl:
        return entry[1]
    api_key = _api_key_read(prefix, cursor)
    if api_key is None:
        _api_keys.pop(prefix, None)
        return None
    if ttl > 0:
        if len(_api_keys) >= _API_KEYS_MAX:
            _api_keys.clear()
        _api_keys[prefix] = (now, api_key)
    return api_key


def api_key_cache_forget(*, prefix: str | None = None) -> None:
    """Drop one key (or every key) from this process's authentication cache."""
    if prefix is None:
        _api_keys.clear()
    else:
        _api_keys.pop(prefix, None)


def api_key_last_used_due(*, api_key: AccountAPIKey, now: datetime) -> bool:
    """Whether a use of ``api_key`` at ``now`` should be written: at most once a minute."""
    return api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_EVERY
