"""Throttle failed admin logins per client address and username."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse


def _key(request: HttpRequest) -> str:
    who = f"{request.META.get('REMOTE_ADDR', '')}|{request.POST.get('username', '').lower()}"
    return "admin-login-failures:" + hashlib.sha256(who.encode()).hexdigest()


def throttled_login(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        key = _key(request)
        if cache.get(key, 0) >= settings.ADMIN_LOGIN_MAX_FAILURES:
            response = HttpResponse("Too many failed logins. Try again later.", status=429, content_type="text/plain")
            response["Retry-After"] = str(settings.ADMIN_LOGIN_WINDOW)
            return response
        response = view(request, *args, **kwargs)
        if response.status_code == 200:  # the form came back: the login failed
            cache.add(key, 0, settings.ADMIN_LOGIN_WINDOW)
            cache.incr(key)
        return response

    return wrapper
