from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils.http import parse_etags
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors
from catalog.cache import catalog_answer
from catalog.models import Dataset
from catalog.serializers import DatasetOutputSerializer
from core.pagination import PageNumberPagination


def _cacheable(request: Request, data: Any, etag: str) -> Response:
    """The public answer with its ETag and Cache-Control; 304 when the client has it already."""
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={int(settings.CATALOG_MAX_AGE.total_seconds())}"}
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and (if_none_match.strip() == "*" or etag in parse_etags(if_none_match)):
        return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(data, headers=headers)


@extend_schema(tags=["catalog"])
class DatasetListApi(generics.ListAPIView):
    """Every dataset on the platform with the frequencies it offers. Public."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = DatasetOutputSerializer
    pagination_class = PageNumberPagination

    def get_queryset(self) -> QuerySet[Dataset]:
        return selectors.dataset_list()

    def _build(self) -> Any:
        response = self.list(self.request)
        return response.data

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data, etag = catalog_answer(f"list?{request.META.get('QUERY_STRING', '')}", self._build)
        return _cacheable(request, data, etag)


@extend_schema_view(
    get=extend_schema(responses=DatasetOutputSerializer, tags=["catalog"]),
)
class DatasetDetailApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request, symbol: str) -> Response:
        data, etag = catalog_answer(
            f"detail:{symbol.upper()}",
            lambda: DatasetOutputSerializer(selectors.dataset_detail_get(symbol=symbol)).data,
        )
        return _cacheable(request, data, etag)
