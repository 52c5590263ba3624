"""Pagination shared by every list: a ``results`` array, a ``next`` link and a
bounded ``?page_size=``."""

from django.conf import settings
from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Opaque-cursor pagination for tables that grow without bound."""

    page_size = settings.API_PAGE_SIZE
    max_page_size = settings.API_MAX_PAGE_SIZE
    page_size_query_param = "page_size"
    ordering = "-id"


class OldestFirstCursorPagination(CursorPagination):
    ordering = "id"


class PageNumberPagination(pagination.PageNumberPagination):
    """Numbered pages for small, bounded lists (the catalog)."""

    page_size = settings.API_PAGE_SIZE
    max_page_size = settings.API_MAX_PAGE_SIZE
    page_size_query_param = "page_size"
