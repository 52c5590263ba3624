"""Pagination shared by every list: a ``results`` array, a ``next`` link and a
bounded ``?page_size=``. A cursor or page the server did not issue is a 400 that
names the parameter, never a 404 or a 500."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

from core.errors import FieldError

CURSOR_MESSAGE = "Not a cursor this endpoint issued; follow the 'next' link as given."


class CursorPagination(pagination.CursorPagination):
    """Opaque-cursor pagination for tables that grow without bound."""

    page_size = settings.API_PAGE_SIZE
    max_page_size = settings.API_MAX_PAGE_SIZE
    page_size_query_param = "page_size"
    ordering = "-id"

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


class OldestFirstCursorPagination(CursorPagination):
    ordering = "id"


class PageNumberPagination(pagination.PageNumberPagination):
    """Numbered pages for small, bounded lists (the catalog)."""

    page_size = settings.API_PAGE_SIZE
    max_page_size = settings.API_MAX_PAGE_SIZE
    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:
            raise FieldError(self.page_query_param, f"{exc.detail} Pages are numbered from 1.") from None
