from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import Account, AccountAPIKey
from accounts.selectors import api_key_for_authentication, api_key_last_used_due

KEYWORD = "Api-Key"
WRONG_SCHEME = "Unsupported authorization scheme: send `Authorization: Api-Key <key>`."


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Reads ``Authorization: Api-Key <key>``; unknown, revoked or expired keys,
    inactive accounts and any other scheme (``Bearer``, a bare key) are refused with 401.

    The key row comes from a per-process cache at most ``API_KEY_CACHE_TTL`` old (a
    revoked key is refused within that time everywhere, at once where it was revoked); the
    SHA-512 check and the expiry check run on every request. ``last_used_at`` is written at
    most once a minute per key."""

    def authenticate(self, request: Request) -> tuple[Account, AccountAPIKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        account, api_key, now = api_key_check(header)
        if api_key_last_used_due(api_key=api_key, now=now):
            from accounts.services import api_key_mark_used  # services import DRF, which imports this

            api_key_mark_used(api_key=api_key, now=now)
        return account, api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


def api_key_check(header: str, cursor: Any | None = None) -> tuple[Account, AccountAPIKey, datetime]:
    """The account and key an ``Authorization`` header carries, and the time they were checked;
    ``AuthenticationFailed`` saying why when it carries none that may call. A key not kept
    is read on ``cursor`` when the caller brings one."""
    keyword, _, key = header.partition(" ")
    if keyword.lower() != KEYWORD.lower():
        raise exceptions.AuthenticationFailed(WRONG_SCHEME)
    key = key.strip()
    if not key or " " in key:
        raise exceptions.AuthenticationFailed("Malformed Api-Key header: expected 'Api-Key <key>'.")
    prefix, _, _ = key.partition(".")
    api_key = api_key_for_authentication(prefix=prefix, cursor=cursor)
    if api_key is None or not api_key.is_valid(key):
        raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
    now = timezone.now()
    if api_key.expiry_date is not None and api_key.expiry_date <= now:
        raise exceptions.AuthenticationFailed("This API key has expired.")
    if not api_key.account.is_active:
        raise exceptions.AuthenticationFailed("This account is inactive.")
    return api_key.account, api_key, now


def hot_caller(header: str, cursor: Any) -> tuple[Account, str] | None:
    """For ``core.hotpath``: the account and key prefix of a header ``ApiKeyAuthentication``
    accepts, when accepting it writes nothing; None otherwise (no header, a refused key, or a
    key whose last use is due to be written), and the request goes to Django. A key not kept
    is read on the fast path's ``cursor``."""
    if not header:
        return None
    try:
        account, api_key, now = api_key_check(header, cursor)
    except exceptions.AuthenticationFailed:
        return None
    if api_key_last_used_due(api_key=api_key, now=now):
        return None
    return account, api_key.prefix


def request_account(request: Request) -> Account:
    """The account calling the API: the one way views get it, typed.

    Every API view but the public catalog requires authentication, and API keys authenticate
    accounts only, so an authenticated request always carries one."""
    account = request.user
    if not isinstance(account, Account):
        raise exceptions.NotAuthenticated()
    return account


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`",
        }
