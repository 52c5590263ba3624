"""Pagination shared by every list: a ``results`` array, a ``next`` link and a
bounded ``?page_size=``. A cursor or page the server did not issue is a 400 that
names the parameter, never a 404 or a 500.

One ``page_size`` rule for every list: absent means the list's default; otherwise a
whole number from 1 to the list's maximum, anything else (``0``, ``abc``, empty, too
large) a 400 naming ``page_size``."""

from base64 import b64encode
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from core.errors import FieldError


def page_size_value(raw: str, *, maximum: int) -> int:
    """A ``page_size`` as sent, under the one rule every list follows; ``ValueError`` says what is wrong."""
    text = raw.strip()
    size = int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else 0
    if not 1 <= size <= maximum:
        raise ValueError(f"Must be a whole number from 1 to {maximum}.")
    return size


def page_size_parse(request: Request, *, default: int, maximum: int) -> int:
    """The page size a request asks for (``default`` when it asks for none)."""
    raw = request.query_params.get("page_size")
    if raw is None:
        return default
    try:
        return page_size_value(raw, maximum=maximum)
    except ValueError as exc:
        raise FieldError("page_size", str(exc)) from None


CURSOR_MESSAGE = "Not a cursor this endpoint issued; follow the 'next' link as given."


class CursorPagination(pagination.CursorPagination):
    """Opaque-cursor pagination for tables that grow without bound."""

    page_size = settings.API_PAGE_SIZE
    max_page_size = settings.API_MAX_PAGE_SIZE
    page_size_query_param = "page_size"
    page_size_query_description = (
        f"Whole number from 1 to {settings.API_MAX_PAGE_SIZE}; default {settings.API_PAGE_SIZE}."
    )
    ordering = "-id"

    def get_page_size(self, request: Request) -> int:
        return page_size_parse(request, default=self.page_size, maximum=self.max_page_size)

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise FieldError("cursor", CURSOR_MESSAGE) from None

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> Any:
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, OverflowError, DjangoValidationError):
            # A well-formed cursor whose position does not fit the ordering field (edited by hand).
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            raise FieldError("cursor", CURSOR_MESSAGE) from None


def first_page_next_link(rows: list[dict[str, Any]], *, page_size: int, field: str, url: str) -> str | None:
    """The ``next`` link ``CursorPagination`` gives a first page: ``rows`` are the first
    ``page_size + 1`` rows in the list's order, ``field`` its first ordering field, ``url`` the
    request's absolute URI. A plain function of the rows, for reads served without DRF."""
    if len(rows) <= page_size:
        return None
    compare, offset, position = str(rows[page_size][field]), 0, None
    for row in reversed(rows[:page_size]):
        position = str(row[field])
        if position != compare:
            break
        compare = position
        offset += 1
    else:  # every row of the page shares the position of the row after it
        offset, position = page_size, None
    tokens = {"o": str(offset)} if offset else {}
    if position is not None:
        tokens["p"] = position
    encoded = b64encode(urlencode(tokens).encode("ascii")).decode("ascii")
    return str(replace_query_param(url, "cursor", encoded))


class OldestFirstCursorPagination(CursorPagination):
    ordering = "id"


class PageNumberPagination(pagination.PageNumberPagination):
    """Numbered pages for small, bounded lists (the catalog)."""

    page_size = settings.API_PAGE_SIZE
    max_page_size = settings.API_MAX_PAGE_SIZE
    page_size_query_param = "page_size"
    page_size_query_description = (
        f"Whole number from 1 to {settings.API_MAX_PAGE_SIZE}; default {settings.API_PAGE_SIZE}."
    )

    def get_page_size(self, request: Request) -> int:
        return page_size_parse(request, default=self.page_size, maximum=self.max_page_size)

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:
            raise FieldError(self.page_query_param, f"{exc.detail} Pages are numbered from 1.") from None
