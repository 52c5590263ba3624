from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.utils.cache import add_never_cache_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from accounts.authentication import request_account
from webhooks import selectors, services
from webhooks.catalog import EVENT_TYPES
from webhooks.models import Delivery, DeliveryStatus, Endpoint
from webhooks.serializers import (
    DeliveryListQuerySerializer,
    DeliveryOutputSerializer,
    EndpointCreateInputSerializer,
    EndpointOutputSerializer,
    EndpointUpdateInputSerializer,
    EndpointWithSecretOutputSerializer,
    EventFeedOutputSerializer,
    EventFeedQuerySerializer,
    EventOutputSerializer,
    RedeliverFailedInputSerializer,
    RedeliverFailedOutputSerializer,
)

TAGS = ["webhooks"]
DISABLED = OpenApiResponse(description="Problem `endpoint_disabled`: enable the endpoint first.")


def _shown_once(response: Response) -> Response:
    """A response carrying a signing secret: never cached, never kept for an Idempotency-Key replay."""
    add_never_cache_headers(response)
    return response


@extend_schema_view(
    get=extend_schema(tags=TAGS, summary="Your webhook endpoints"),
    post=extend_schema(
        tags=TAGS,
        summary="Register a webhook endpoint",
        request=EndpointCreateInputSerializer,
        responses={
            201: EndpointWithSecretOutputSerializer,
            409: OpenApiResponse(description="Problem `too_many_endpoints`: the account's limit is reached."),
        },
        description="The answer carries the signing secret (`whsec_...`), shown this once.",
    ),
)
class WebhookEndpointListCreateApi(generics.ListAPIView):
    serializer_class = EndpointOutputSerializer
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Endpoint]:
        return selectors.endpoint_list(account=request_account(self.request))

    def post(self, request: Request) -> Response:
        serializer = EndpointCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(account=request_account(request), **serializer.validated_data)
        return _shown_once(Response(EndpointWithSecretOutputSerializer(endpoint).data, status=status.HTTP_201_CREATED))


@extend_schema_view(
    get=extend_schema(tags=TAGS, summary="One of your webhook endpoints", responses=EndpointOutputSerializer),
    patch=extend_schema(
        tags=TAGS,
        summary="Change a webhook endpoint",
        request=EndpointUpdateInputSerializer,
        responses=EndpointOutputSerializer,
        description="`enabled: true` re-enables a disabled endpoint; failed deliveries stay failed until redelivered.",
    ),
    delete=extend_schema(tags=TAGS, summary="Delete a webhook endpoint", responses={204: None}),
)
class WebhookEndpointDetailApi(APIView):
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = selectors.endpoint_get(account=request_account(request), endpoint_id=endpoint_id)
        return Response(EndpointOutputSerializer(endpoint).data)

    def patch(self, request: Request, endpoint_id: int) -> Response:
        account = request_account(request)
        endpoint = selectors.endpoint_get(account=account, endpoint_id=endpoint_id)
        serializer = EndpointUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, actor=account, **serializer.validated_data)
        return Response(EndpointOutputSerializer(endpoint).data)

    def delete(self, request: Request, endpoint_id: int) -> Response:
        endpoint = selectors.endpoint_get(account=request_account(request), endpoint_id=endpoint_id)
        services.endpoint_delete(endpoint=endpoint, actor=request_account(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    post=extend_schema(
        tags=TAGS,
        summary="Rotate the signing secret",
        request=None,
        responses=EndpointWithSecretOutputSerializer,
        description=(
            "Returns the new secret once. For 24 hours deliveries carry two signatures in "
            "`webhook-signature`, one per secret, so receivers can switch without losing any."
        ),
    ),
)
class WebhookEndpointRotateSecretApi(APIView):
    def post(self, request: Request, endpoint_id: int) -> Response:
        endpoint = selectors.endpoint_get(account=request_account(request), endpoint_id=endpoint_id)
        endpoint = services.endpoint_rotate_secret(endpoint=endpoint, actor=request_account(request))
        return _shown_once(Response(EndpointWithSecretOutputSerializer(endpoint).data))


@extend_schema_view(
    post=extend_schema(
        tags=TAGS,
        summary="Send a webhook.ping event to this endpoint",
        request=None,
        responses={202: DeliveryOutputSerializer, 409: DISABLED},
        description="The delivery is attempted right away; follow it in the endpoint's deliveries.",
    ),
)
class WebhookEndpointPingApi(APIView):
    def post(self, request: Request, endpoint_id: int) -> Response:
        account = request_account(request)
        endpoint = selectors.endpoint_get(account=account, endpoint_id=endpoint_id)
        delivery = services.endpoint_ping(endpoint=endpoint, actor=account)
        delivery = selectors.delivery_get(account=account, delivery_id=delivery.pk)
        return Response(DeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    get=extend_schema(
        tags=TAGS,
        summary="Deliveries to this endpoint, newest first, with every attempt",
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=DeliveryStatus.values)],
    ),
)
class WebhookEndpointDeliveryListApi(generics.ListAPIView):
    serializer_class = DeliveryOutputSerializer
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Delivery]:
        account = request_account(self.request)
        endpoint = selectors.endpoint_get(account=account, endpoint_id=self.kwargs["endpoint_id"])
        query = DeliveryListQuerySerializer.parse(self.request)
        return selectors.delivery_list(endpoint=endpoint, status=query["status"])


@extend_schema_view(
    post=extend_schema(
        tags=TAGS,
        summary="Redeliver every failed delivery of this endpoint since a time",
        request=RedeliverFailedInputSerializer,
        responses={202: RedeliverFailedOutputSerializer, 409: DISABLED},
    ),
)
class WebhookEndpointRedeliverFailedApi(APIView):
    def post(self, request: Request, endpoint_id: int) -> Response:
        account = request_account(request)
        endpoint = selectors.endpoint_get(account=account, endpoint_id=endpoint_id)
        serializer = RedeliverFailedInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        count = services.deliveries_redeliver_failed(
            endpoint=endpoint, since=serializer.validated_data["since"], actor=account
        )
        return Response({"count": count}, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    post=extend_schema(
        tags=TAGS,
        summary="Send one delivery again now",
        request=None,
        responses={202: DeliveryOutputSerializer, 409: DISABLED},
        description="Same `webhook-id`, a fresh retry schedule.",
    ),
)
class WebhookDeliveryRedeliverApi(APIView):
    def post(self, request: Request, delivery_id: int) -> Response:
        account = request_account(request)
        delivery = selectors.delivery_get(account=account, delivery_id=delivery_id)
        services.delivery_redeliver(delivery=delivery, actor=account)
        delivery = selectors.delivery_get(account=account, delivery_id=delivery_id)
        return Response(DeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    get=extend_schema(
        tags=TAGS,
        summary="Your events, oldest first: the polling alternative to webhooks",
        parameters=[
            OpenApiParameter("after", OpenApiTypes.STR, description="The id of the last event you processed."),
            OpenApiParameter(
                "type", OpenApiTypes.STR, many=True, enum=list(EVENT_TYPES), description="Only these types."
            ),
            OpenApiParameter(
                "page_size",
                OpenApiTypes.INT,
                description=f"Whole number from 1 to {settings.API_MAX_PAGE_SIZE}; default {settings.API_PAGE_SIZE}.",
            ),
        ],
        responses=EventFeedOutputSerializer,
    ),
)
class EventListApi(APIView):
    def get(self, request: Request) -> Response:
        query = EventFeedQuerySerializer.parse(request)
        after = query["after"]
        events, has_more = selectors.event_feed(
            account=request_account(request), after=after, types=query["type"], limit=query["page_size"]
        )
        cursor = events[-1].public_id if events else after
        next_url = replace_query_param(request.build_absolute_uri(), "after", cursor) if has_more and cursor else None
        return Response({"results": EventOutputSerializer(events, many=True).data, "next": next_url, "cursor": cursor})
