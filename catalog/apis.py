from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors
from catalog.models import Dataset
from catalog.serializers import DatasetOutputSerializer
from core.pagination import PageNumberPagination


@extend_schema(tags=["catalog"])
class DatasetListApi(generics.ListAPIView):
    """Every dataset on the platform with the frequencies it offers. Public."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = DatasetOutputSerializer
    pagination_class = PageNumberPagination

    def get_queryset(self) -> QuerySet[Dataset]:
        return selectors.dataset_list()


class DatasetDetailApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses=DatasetOutputSerializer, tags=["catalog"])
    def get(self, request: Request, symbol: str) -> Response:
        return Response(DatasetOutputSerializer(selectors.dataset_detail_get(symbol=symbol)).data)
