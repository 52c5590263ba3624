from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_account
from accounts.permissions import IsOps, IsQuant
from accounts.selectors import account_get
from catalog.selectors import dataset_get
from core.pagination import CursorPagination, OldestFirstCursorPagination
from entitlements import selectors, services
from entitlements.filters import AccessRequestFilter, GrantFilter
from entitlements.models import AccessRequest, Grant
from entitlements.serializers import (
    AccessRequestApproveInputSerializer,
    AccessRequestCreateInputSerializer,
    AccessRequestOutputSerializer,
    AccessRequestRefuseInputSerializer,
    EntitlementOutputSerializer,
    GrantCreateInputSerializer,
    GrantDetailOutputSerializer,
    GrantOutputSerializer,
    GrantRevokeInputSerializer,
    GrantUpdateInputSerializer,
    OpsAccessRequestOutputSerializer,
)


def iso_instant(value: datetime | None) -> str | None:
    """As DRF's DateTimeField writes an instant (UTC, ``Z``)."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_400 = OpenApiResponse(description="validation_error: `errors` names the field.")
_404 = OpenApiResponse(description="not_found")
_409_create = OpenApiResponse(
    description="already_granted (with grant_id) or already_pending (with request_id) for a requested frequency."
)
_409_decide = OpenApiResponse(description="already_decided: another decision got there first; nothing changed.")
_409_grant = OpenApiResponse(description="grant_not_active: the grant is expired or revoked.")


# --- quant ----------------------------------------------------------------------------


@extend_schema(tags=["entitlements"])
@extend_schema_view(
    post=extend_schema(
        request=AccessRequestCreateInputSerializer,
        responses={201: AccessRequestOutputSerializer, 400: _400, 404: _404, 409: _409_create},
        description="Ask for one dataset at one or more frequencies. The answer shows each item after the "
        "auto-decision policy ran: approved or refused automatically (with the rule), or pending for Ops.",
    ),
)
class AccessRequestListCreateApi(generics.ListAPIView):
    """The caller's own access requests, newest first."""

    permission_classes = [IsQuant]
    serializer_class = AccessRequestOutputSerializer
    pagination_class = CursorPagination

    def get_queryset(self) -> QuerySet[AccessRequest]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return AccessRequest.objects.none()
        return selectors.access_request_list(account=request_account(self.request))

    def post(self, request: Request) -> Response:
        serializer = AccessRequestCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        access_request = services.access_request_create(
            account=request_account(request),
            dataset=dataset_get(symbol=data["dataset"]),
            frequencies=data["frequencies"],
            reason=data["reason"],
        )
        access_request = selectors.access_request_get(request_id=access_request.pk)
        return Response(AccessRequestOutputSerializer(access_request).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(responses={200: AccessRequestOutputSerializer, 404: _404}, tags=["entitlements"]),
)
class AccessRequestDetailApi(APIView):
    permission_classes = [IsQuant]

    def get(self, request: Request, request_id: int) -> Response:
        access_request = selectors.access_request_get(request_id=request_id, account=request_account(request))
        return Response(AccessRequestOutputSerializer(access_request).data)


@extend_schema_view(
    post=extend_schema(
        request=None,
        responses={200: AccessRequestOutputSerializer, 404: _404, 409: OpenApiResponse(description="nothing_pending")},
        tags=["entitlements"],
        description="Withdraw every item of your request that is still pending.",
    ),
)
class AccessRequestCancelApi(APIView):
    permission_classes = [IsQuant]

    def post(self, request: Request, request_id: int) -> Response:
        access_request = selectors.access_request_get(request_id=request_id, account=request_account(request))
        services.access_request_cancel(request=access_request, actor=access_request.account)
        access_request = selectors.access_request_get(request_id=request_id)
        return Response(AccessRequestOutputSerializer(access_request).data)


def entitlement_wire_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The list's entries from plain rows (``selectors.ENTITLEMENT_ROW_FIELDS``)."""
    return [
        {
            "id": row["id"],
            "dataset": row["dataset__symbol"],
            "frequency": row["frequency"],
            "starts_at": iso_instant(row["starts_at"]),
            "expires_at": iso_instant(row["expires_at"]),
            "request_id": row["item__request_id"],
        }
        for row in rows
    ]


@extend_schema(tags=["entitlements"])
class EntitlementListApi(generics.ListAPIView):
    """The caller's grants in force right now, each with its ``expires_at`` (null = permanent)."""

    permission_classes = [IsQuant]
    serializer_class = EntitlementOutputSerializer
    pagination_class = CursorPagination

    def get_queryset(self) -> QuerySet[Grant, Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Grant.objects.none()
        return selectors.account_entitlement_rows(account=request_account(self.request))

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Plain rows in, the serializer's dicts out, without a model instance per grant; a first
        # page on PostgreSQL from one fixed statement.
        rows: Any
        if connection.vendor == "postgresql" and request.query_params.get("cursor") is None:
            rows = selectors.AccountEntitlementRowsNewestFirst(account=request_account(request))
        else:
            rows = self.get_queryset()
        page = self.paginate_queryset(rows)
        assert page is not None
        return self.get_paginated_response(entitlement_wire_rows(page))


# --- ops ------------------------------------------------------------------------------


@extend_schema(tags=["ops"])
class OpsAccessRequestListApi(generics.ListAPIView):
    """Access requests, oldest first; ``?status=pending`` is the queue."""

    permission_classes = [IsOps]
    serializer_class = OpsAccessRequestOutputSerializer
    pagination_class = OldestFirstCursorPagination
    filterset_class = AccessRequestFilter

    def get_queryset(self) -> QuerySet[AccessRequest]:
        return selectors.access_request_list()


@extend_schema_view(
    get=extend_schema(responses={200: OpsAccessRequestOutputSerializer, 404: _404}, tags=["ops"]),
)
class OpsAccessRequestDetailApi(APIView):
    permission_classes = [IsOps]

    def get(self, request: Request, request_id: int) -> Response:
        return Response(OpsAccessRequestOutputSerializer(selectors.access_request_get(request_id=request_id)).data)


@extend_schema_view(
    post=extend_schema(
        request=AccessRequestApproveInputSerializer,
        responses={200: OpsAccessRequestOutputSerializer, 400: _400, 404: _404, 409: _409_decide},
        tags=["ops"],
        description="Approve the pending items at `frequencies` (all pending items when left out); "
        "`expires_at` or `trial_days` makes the grants a trial.",
    ),
)
class OpsAccessRequestApproveApi(APIView):
    permission_classes = [IsOps]

    def post(self, request: Request, request_id: int) -> Response:
        access_request = selectors.access_request_get(request_id=request_id)
        serializer = AccessRequestApproveInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.access_request_approve(
            request=access_request,
            frequencies=data["frequencies"],
            actor=request_account(request),
            expires_at=services.grant_expiry_resolve(expires_at=data["expires_at"], trial_days=data["trial_days"]),
            note=data["note"],
        )
        return Response(OpsAccessRequestOutputSerializer(selectors.access_request_get(request_id=request_id)).data)


@extend_schema_view(
    post=extend_schema(
        request=AccessRequestRefuseInputSerializer,
        responses={200: OpsAccessRequestOutputSerializer, 400: _400, 404: _404, 409: _409_decide},
        tags=["ops"],
        description="Refuse the pending items at `frequencies` (all pending items when left out), saying why.",
    ),
)
class OpsAccessRequestRefuseApi(APIView):
    permission_classes = [IsOps]

    def post(self, request: Request, request_id: int) -> Response:
        access_request = selectors.access_request_get(request_id=request_id)
        serializer = AccessRequestRefuseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.access_request_refuse(
            request=access_request,
            frequencies=data["frequencies"],
            actor=request_account(request),
            reason=data["reason"],
        )
        return Response(OpsAccessRequestOutputSerializer(selectors.access_request_get(request_id=request_id)).data)


@extend_schema(tags=["ops"])
@extend_schema_view(
    post=extend_schema(
        request=GrantCreateInputSerializer,
        responses={201: GrantDetailOutputSerializer, 400: _400, 404: _404, 409: _409_create},
        description="Give a quant access directly; `expires_at` or `trial_days` makes it a trial.",
    ),
)
class OpsGrantListCreateApi(generics.ListAPIView):
    """Grants, newest first, filterable by account ref, dataset, frequency and effective status."""

    permission_classes = [IsOps]
    serializer_class = GrantOutputSerializer
    pagination_class = CursorPagination
    filterset_class = GrantFilter

    def get_queryset(self) -> QuerySet[Grant]:
        return selectors.grant_list()

    def post(self, request: Request) -> Response:
        serializer = GrantCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        grant = services.grant_create(
            account=account_get(ref=data["account"]),
            dataset=dataset_get(symbol=data["dataset"]),
            frequency=data["frequency"],
            actor=request_account(request),
            expires_at=services.grant_expiry_resolve(expires_at=data["expires_at"], trial_days=data["trial_days"]),
            note=data["note"],
        )
        return Response(
            GrantDetailOutputSerializer(selectors.grant_get(grant_id=grant.pk)).data, status=status.HTTP_201_CREATED
        )


@extend_schema_view(
    get=extend_schema(responses={200: GrantDetailOutputSerializer, 404: _404}, tags=["ops"]),
    patch=extend_schema(
        request=GrantUpdateInputSerializer,
        responses={200: GrantDetailOutputSerializer, 400: _400, 404: _404, 409: _409_grant},
        tags=["ops"],
        description="Extend or shorten a grant in force: a new future `expires_at`, or null for permanent.",
    ),
)
class OpsGrantDetailApi(APIView):
    permission_classes = [IsOps]

    def get(self, request: Request, grant_id: int) -> Response:
        return Response(GrantDetailOutputSerializer(selectors.grant_get(grant_id=grant_id)).data)

    def patch(self, request: Request, grant_id: int) -> Response:
        grant = selectors.grant_get(grant_id=grant_id)
        serializer = GrantUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.grant_update_expiry(
            grant=grant,
            expires_at=serializer.validated_data["expires_at"],
            actor=request_account(request),
            reason=serializer.validated_data["reason"],
        )
        return Response(GrantDetailOutputSerializer(selectors.grant_get(grant_id=grant_id)).data)


@extend_schema_view(
    post=extend_schema(
        request=GrantRevokeInputSerializer,
        responses={200: GrantDetailOutputSerializer, 400: _400, 404: _404, 409: _409_grant},
        tags=["ops"],
        description="End a grant in force now; the quant loses access at once and is told why.",
    ),
)
class OpsGrantRevokeApi(APIView):
    permission_classes = [IsOps]

    def post(self, request: Request, grant_id: int) -> Response:
        grant = selectors.grant_get(grant_id=grant_id)
        serializer = GrantRevokeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.grant_revoke(
            grant=grant,
            actor=request_account(request),
            reason=serializer.validated_data["reason"],
        )
        return Response(GrantDetailOutputSerializer(selectors.grant_get(grant_id=grant_id)).data)
