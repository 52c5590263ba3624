"""Django's session, authentication and messages middleware, skipped for the API.

The API authenticates every request by its ``Api-Key`` header, keeps no session, sets no
cookie and shows no flash message. These subclasses pass
``/api/`` requests straight through, so an API request pays for none of them, and behave
exactly as Django's for every other path (the admin).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware as _AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as _SessionMiddleware
from django.http import HttpRequest, HttpResponse

API_PREFIX = "/api/"


class _NotForApi:
    get_response: Any

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_NotForApi, _SessionMiddleware):
    pass


class AuthenticationMiddleware(_NotForApi, _AuthenticationMiddleware):
    pass


class MessageMiddleware(_NotForApi, _MessageMiddleware):
    pass
