from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import Account, AccountAPIKey

KEYWORD = "Api-Key"
WRONG_SCHEME = "Unsupported authorization scheme: send `Authorization: Api-Key <key>`."


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Reads ``Authorization: Api-Key <key>``; unknown, revoked or expired keys,
    inactive accounts and any other scheme (``Bearer``, a bare key) are refused with 401."""

    def authenticate(self, request: Request) -> tuple[Account, AccountAPIKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword.lower() != KEYWORD.lower():
            raise exceptions.AuthenticationFailed(WRONG_SCHEME)
        key = key.strip()
        if not key or " " in key:
            raise exceptions.AuthenticationFailed("Malformed Api-Key header: expected 'Api-Key <key>'.")
        prefix, _, _ = key.partition(".")
        api_key = AccountAPIKey.objects.select_related("account").filter(prefix=prefix, revoked=False).first()
        if api_key is None or not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        if api_key.expiry_date is not None and api_key.expiry_date <= timezone.now():
            raise exceptions.AuthenticationFailed("This API key has expired.")
        if not api_key.account.is_active:
            raise exceptions.AuthenticationFailed("This account is inactive.")
        return api_key.account, api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


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
