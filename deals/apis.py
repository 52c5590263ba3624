from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_account
from accounts.permissions import IsBuyer, IsSeller, IsSellerOrBuyer
from core.pagination import CursorPagination
from deals import selectors, services
from deals.filters import DealFilter
from deals.models import BuyerAuthorization, Deal
from deals.serializers import (
    AuthorizedBuyerInputSerializer,
    AuthorizedBuyerOutputSerializer,
    AuthorizedSellerOutputSerializer,
    DealInputSerializer,
    DealOutputSerializer,
    PreconditionFailedSerializer,
    deal_input_validate,
)
from deals.wire import deal_etag, deal_row_etag, deal_wire_rows

_ETAG = re.compile(r'^"(?P<id>[0-9a-f-]{36})\.(?P<version>\d+)"$')


def _validated(serializer_class: type[serializers.Serializer], data: Any, *, partial: bool = False) -> dict[str, Any]:
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _if_match_versions(header: str | None, deal_id: UUID) -> frozenset[int] | None:
    """Versions of this deal that ``If-Match`` accepts; None when any will do (no header, or ``*``).

    Strong comparison: weak tags and other deals' tags never match.
    """
    if header is None or header.strip() == "*":
        return None
    versions = set()
    for tag in header.split(","):
        match = _ETAG.match(tag.strip())
        if match and match["id"] == str(deal_id):
            versions.add(int(match["version"]))
    return frozenset(versions)


def _none_match(header: str | None, etag: str) -> bool:
    """``If-None-Match`` matches ``etag``: ``*``, or any listed tag under weak comparison
    (RFC 9110 13.1.2: ``W/"x"`` and ``"x"`` are the same tag)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _deal_response(written: services.DealWritten, status_code: int = status.HTTP_200_OK, **headers: str) -> Response:
    return Response(written.wire, status=status_code, headers={"ETag": deal_etag(written.deal), **headers})


_PAGING_ONLY = frozenset({"page_size", "cursor"})


class DealCursorPagination(CursorPagination):
    """Newest update first (``?ordering=updated_at`` for oldest first), ties broken by id."""

    ordering = ("-updated_at", "-id")  # type: ignore[assignment]

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        if request.query_params.get("ordering") == "updated_at":
            return ("updated_at", "id")
        return ("-updated_at", "-id")


_IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="ETag of the version you read; a stale one answers 412 precondition_failed (strong comparison).",
)
_IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="ETags you hold (weak comparison, `W/` accepted) or `*`: 304 when the deal still matches.",
)
_ETAG_RESPONSE = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200, 201, 304],
    description="The deal's version as an entity tag: send it back in If-Match.",
)
_LOCATION = OpenApiParameter(
    "Location",
    OpenApiTypes.URI,
    OpenApiParameter.HEADER,
    response=[201],
    description="Address of the new deal.",
)


@extend_schema_view(
    get=extend_schema(tags=["deals"]),
    post=extend_schema(
        request=DealInputSerializer,
        parameters=[_ETAG_RESPONSE, _LOCATION],
        responses={201: DealOutputSerializer},
        tags=["deals"],
        description="Post a deal. `seller` is your own ref or omitted. Answers with an `ETag`.",
    ),
)
class DealListCreateApi(generics.ListAPIView):
    """Sellers list their own deals and post new ones; buyers list the deals of sellers who authorised them."""

    serializer_class = DealOutputSerializer
    pagination_class = DealCursorPagination
    filterset_class = DealFilter

    def get_permissions(self) -> list[BasePermission]:
        return [IsSeller()] if self.request.method == "POST" else [IsSellerOrBuyer()]

    def get_queryset(self) -> QuerySet[Deal, Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Deal.objects.none()
        account = request_account(self.request)
        return selectors.deal_rows_visible(account=account)

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Plain rows in, wire dicts out: no model instance or serializer per deal.
        queryset = self.get_queryset()
        if set(request.query_params) - _PAGING_ONLY:  # the filter set has nothing to check otherwise
            queryset = self.filter_queryset(queryset)
        page = self.paginate_queryset(queryset)
        assert page is not None
        items = selectors.deal_items_by_deal(deal_ids=[row["id"] for row in page])
        return self.get_paginated_response(deal_wire_rows(page, items))

    def post(self, request: Request) -> Response:
        data = deal_input_validate(request.data)
        account = request_account(request)
        written = services.deal_create(seller=account, seller_ref=data.pop("seller", None), **data, actor=account)
        return _deal_response(written, status.HTTP_201_CREATED, Location=f"/api/v1/deals/{written.deal.public_id}")


@extend_schema_view(
    get=extend_schema(
        parameters=[_IF_NONE_MATCH, _ETAG_RESPONSE],
        responses={200: DealOutputSerializer, 304: OpenApiResponse(description="Not modified (If-None-Match)")},
        tags=["deals"],
        description="A deal you own or whose seller authorised you; any other id is 404.",
    ),
    patch=extend_schema(
        request=DealInputSerializer,
        parameters=[_IF_MATCH, _ETAG_RESPONSE],
        responses={
            200: DealOutputSerializer,
            409: OpenApiResponse(
                description="Problem `deal_sold`: a sold deal cannot change (`changed` lists the fields); "
                "set its status back to available first, on its own."
            ),
            412: PreconditionFailedSerializer,
        },
        tags=["deals"],
        description=(
            "Change your own deal: any subset of fields, `items` replaced whole. "
            "A change that changes nothing keeps the version and publishes nothing."
        ),
    ),
)
class DealDetailApi(APIView):
    def get_permissions(self) -> list[BasePermission]:
        return [IsSeller()] if self.request.method == "PATCH" else [IsSellerOrBuyer()]

    def get(self, request: Request, deal_id: UUID) -> Response:
        account = request_account(request)
        row = selectors.deal_row_get_visible(account=account, deal_id=deal_id)
        etag = deal_row_etag(row)
        if _none_match(request.headers.get("If-None-Match"), etag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        items = selectors.deal_items_by_deal(deal_ids=[row["id"]])
        return Response(deal_wire_rows([row], items)[0], headers={"ETag": etag})

    def patch(self, request: Request, deal_id: UUID) -> Response:
        data = deal_input_validate(request.data, partial=True)
        account = request_account(request)
        written = services.deal_update(
            seller=account,
            deal_id=deal_id,
            changes=data,
            expected_versions=_if_match_versions(request.headers.get("If-Match"), deal_id),
            actor=account,
        )
        return _deal_response(written)


@extend_schema_view(
    get=extend_schema(tags=["deals"]),
    post=extend_schema(
        request=AuthorizedBuyerInputSerializer,
        responses={
            201: AuthorizedBuyerOutputSerializer,
            200: AuthorizedBuyerOutputSerializer,
        },
        tags=["deals"],
        description="Authorise a buyer: 201 when new, 200 when it already was. Any ref that is not a buyer's "
        "(unknown, or another role) gets the same 400 naming `buyer`, so the answer tells nothing about it.",
    ),
)
class AuthorizedBuyerListCreateApi(generics.ListAPIView):
    """The buyers you (a seller) let see your deals and receive their events."""

    permission_classes = [IsSeller]
    serializer_class = AuthorizedBuyerOutputSerializer

    def get_queryset(self) -> QuerySet[BuyerAuthorization]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return BuyerAuthorization.objects.none()
        account = request_account(self.request)
        return selectors.authorization_list_for_seller(seller=account)

    def post(self, request: Request) -> Response:
        data = _validated(AuthorizedBuyerInputSerializer, request.data)
        account = request_account(request)
        authorization, created = services.authorization_create_by_ref(
            seller=account, buyer_ref=data["buyer"], actor=account
        )
        return Response(
            AuthorizedBuyerOutputSerializer(authorization).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema_view(
    delete=extend_schema(
        responses={204: None},
        tags=["deals"],
        description="De-authorise a buyer: it stops seeing your deals and receiving their events at once.",
    ),
)
class AuthorizedBuyerDeleteApi(APIView):
    permission_classes = [IsSeller]

    def delete(self, request: Request, ref: str) -> Response:
        account = request_account(request)
        services.authorization_delete(seller=account, buyer_ref=ref, actor=account)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["deals"])
class AuthorizedSellerListApi(generics.ListAPIView):
    """The sellers whose deals you (a buyer) may see."""

    permission_classes = [IsBuyer]
    serializer_class = AuthorizedSellerOutputSerializer

    def get_queryset(self) -> QuerySet[BuyerAuthorization]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return BuyerAuthorization.objects.none()
        account = request_account(self.request)
        return selectors.authorization_list_for_buyer(buyer=account)
