"""Throttle failed admin logins per client address and username."""

from __future__ import annotations

import contextlib
import hashlib
import unicodedata
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from rest_framework.throttling import BaseThrottle

from core.throttling import CACHE_ERRORS


def username_normalise(username: str) -> str:
    """The form of a username that the throttle counts under: NFKC, trimmed, case-folded.

    So "Admin", " admin " and "admin" in full-width letters share one budget of failures.
    """
    return unicodedata.normalize("NFKC", username).strip().casefold()


def _key(request: HttpRequest) -> str:
    # The client's address as the API throttles see it: X-Forwarded-For is trusted only
    # through the API_NUM_PROXIES proxies the deployment declares.
    address = BaseThrottle().get_ident(request)  # type: ignore[arg-type]
    who = f"{address}|{username_normalise(request.POST.get('username', ''))}"
    return "admin-login-failures:" + hashlib.sha256(who.encode()).hexdigest()


def throttled_login(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        key = _key(request)
        try:
            failures = cache.get(key, 0)
        except CACHE_ERRORS:
            failures = 0  # the cache is down: logins still work, unthrottled
        if failures >= settings.ADMIN_LOGIN_MAX_FAILURES:
            response = HttpResponse("Too many failed logins. Try again later.", status=429, content_type="text/plain")
            response["Retry-After"] = str(int(settings.ADMIN_LOGIN_WINDOW.total_seconds()))
            return response
        response = view(request, *args, **kwargs)
        if response.status_code == 200:  # the form came back: the login failed
            with contextlib.suppress(*CACHE_ERRORS):
                cache.add(key, 0, int(settings.ADMIN_LOGIN_WINDOW.total_seconds()))
                cache.incr(key)
        return response

    return wrapper
