from django.db.models import QuerySet
from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.authentication import request_account
from accounts.models import Account, AccountAPIKey
from accounts.permissions import IsOps
from accounts.serializers import (
    AccountCreateInputSerializer,
    AccountOutputSerializer,
    AccountUpdateInputSerializer,
    ApiKeyCreatedOutputSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyOutputSerializer,
)
from core.pagination import OldestFirstCursorPagination


@extend_schema_view(
    get=extend_schema(responses=AccountOutputSerializer, tags=["accounts"]),
)
class MeApi(APIView):
    def get(self, request: Request) -> Response:
        return Response(AccountOutputSerializer(request_account(request)).data)


@extend_schema(tags=["ops"])
@extend_schema_view(
    post=extend_schema(request=AccountCreateInputSerializer, responses={201: AccountOutputSerializer}, tags=["ops"]),
)
class OpsAccountListCreateApi(generics.ListAPIView):
    permission_classes = [IsOps]
    serializer_class = AccountOutputSerializer
    pagination_class = OldestFirstCursorPagination
    filterset_fields = ["role", "is_active", "is_suspended"]

    def get_queryset(self) -> QuerySet[Account]:
        return selectors.account_list()

    def post(self, request: Request) -> Response:
        serializer = AccountCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = services.account_create(**serializer.validated_data, actor=request_account(request))
        return Response(AccountOutputSerializer(account).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(responses=AccountOutputSerializer, tags=["ops"]),
    patch=extend_schema(request=AccountUpdateInputSerializer, responses=AccountOutputSerializer, tags=["ops"]),
)
class OpsAccountDetailApi(APIView):
    permission_classes = [IsOps]

    def get(self, request: Request, ref: str) -> Response:
        return Response(AccountOutputSerializer(selectors.account_get(ref=ref)).data)

    def patch(self, request: Request, ref: str) -> Response:
        account = selectors.account_get(ref=ref)
        serializer = AccountUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        account = services.account_update(account=account, actor=request_account(request), **serializer.validated_data)
        return Response(AccountOutputSerializer(account).data)


@extend_schema(tags=["ops"])
@extend_schema_view(
    post=extend_schema(
        request=ApiKeyCreateInputSerializer, responses={201: ApiKeyCreatedOutputSerializer}, tags=["ops"]
    ),
)
class OpsApiKeyListCreateApi(generics.ListAPIView):
    permission_classes = [IsOps]
    serializer_class = ApiKeyOutputSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[AccountAPIKey]:
        if getattr(self, "swagger_fake_view", False):
            return AccountAPIKey.objects.none()
        account = selectors.account_get(ref=self.kwargs["ref"])
        return selectors.api_key_list(account=account).select_related("account")

    def post(self, request: Request, ref: str) -> Response:
        account = selectors.account_get(ref=ref)
        serializer = ApiKeyCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, key = services.api_key_create(
            account=account,
            name=serializer.validated_data["name"],
            expires_at=serializer.validated_data["expires_at"],
            actor=request_account(request),
        )
        api_key.key = key  # type: ignore[attr-defined]
        response = Response(ApiKeyCreatedOutputSerializer(api_key).data, status=status.HTTP_201_CREATED)
        add_never_cache_headers(response)  # the key is shown once: no cache, and no Idempotency-Key copy, keeps it
        return response


@extend_schema_view(
    post=extend_schema(request=None, responses=ApiKeyOutputSerializer, tags=["ops"]),
)
class OpsApiKeyRevokeApi(APIView):
    permission_classes = [IsOps]

    def post(self, request: Request, ref: str, prefix: str) -> Response:
        account = selectors.account_get(ref=ref)
        api_key = services.api_key_revoke(
            api_key=selectors.api_key_get(account=account, prefix=prefix),
            actor=request_account(request),
        )
        return Response(ApiKeyOutputSerializer(api_key).data)
