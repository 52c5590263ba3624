"""Price history and market caps for entitled quants, and the public catalog listing with
each dataset's latest market cap (served from ``catalog.cache``).

The price endpoint is the hot path (a year of hourly points in one request): it reads
plain tuples with ``values_list`` and writes JSON and CSV bytes by hand, no model
instances and no serializer per row.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_account
from accounts.permissions import IsQuant
from catalog.cache import catalog_answer
from catalog.models import Dataset, Frequency
from catalog.selectors import dataset_get
from core.errors import ServiceUnavailable
from core.pagination import CursorPagination, PageNumberPagination
from core.renderers import JSONRenderer
from entitlements.selectors import grant_require
from pricing import selectors, services
from pricing.selectors import PricePage, iso_utc
from pricing.serializers import (
    DatasetOutputSerializer,
    MarketCapOutputSerializer,
    MarketCapQuerySerializer,
    PricePageSerializer,
    PriceQuerySerializer,
    ProblemSerializer,
)

TINY = timedelta(microseconds=1)


class PriceSourceUnavailable(ServiceUnavailable):
    default_code = "price_source_unavailable"
    default_detail = "The price source is unavailable and nothing is stored for this range yet."


class CSVRenderer(BaseRenderer):
    """Lets content negotiation accept ``text/csv``; the view writes the CSV itself.

    Anything else reaching it (an error document) is rendered as JSON."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return json.dumps(data).encode()


def _cursor_encode(after: datetime) -> str:
    return base64.urlsafe_b64encode(iso_utc(after).encode()).decode().rstrip("=")


_PROBLEMS = {
    400: OpenApiResponse(ProblemSerializer, description="validation_error: a parameter is malformed (named)"),
    401: OpenApiResponse(ProblemSerializer, description="not_authenticated / authentication_failed"),
    403: OpenApiResponse(ProblemSerializer, description="permission_denied (not a quant) / not_entitled"),
    404: OpenApiResponse(ProblemSerializer, description="not_found: no such dataset"),
}


@extend_schema_view(
    get=extend_schema(
        operation_id="dataset_prices",
        tags=["pricing"],
        summary="Price history (JSON or CSV)",
        description=(
            "Points with `start <= timestamp < end`, oldest first. `start`/`end` are ISO 8601 instants "
            "(a date alone or a time without an offset means UTC). Defaults: `end` = now; `start` = `end` minus 30 days (1h), 365 days (1d) "
            "or 5 years (1mo). Ranges not fetched yet are fetched from the source on demand (a bounded amount "
            "per request; the `next` link continues). CSV with `?format=csv` or `Accept: text/csv`: header row "
            "`timestamp,price_usd` (plus `partial` for 1mo), next page in the `Link` header. Every response "
            "carries `X-Data-As-Of`, `X-Price-Source` and `X-Data-Complete`."
        ),
        parameters=[
            OpenApiParameter("frequency", str, enum=[f.value for f in Frequency], required=True),
            OpenApiParameter("start", OpenApiTypes.DATETIME, description="Inclusive; ISO 8601, no offset means UTC."),
            OpenApiParameter("end", OpenApiTypes.DATETIME, description="Exclusive; ISO 8601, no offset means UTC."),
            OpenApiParameter(
                "page_size",
                int,
                description=f"1 to {settings.PRICE_MAX_PAGE_SIZE}, default {settings.PRICE_PAGE_SIZE}.",
            ),
            OpenApiParameter("cursor", str, description="Opaque; from the `next` link."),
            OpenApiParameter("format", str, enum=["json", "csv"]),
            OpenApiParameter(
                "Link",
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description='CSV only: `<url>; rel="next"` while more points follow; the URL keeps `format=csv`.',
            ),
            OpenApiParameter(
                "X-Price-Source",
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description="Where the points came from.",
            ),
            OpenApiParameter(
                "X-Data-Complete",
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description="`false` when the source failed and only stored points are shown.",
            ),
            OpenApiParameter(
                "X-Data-As-Of",
                OpenApiTypes.DATETIME,
                OpenApiParameter.HEADER,
                response=[200],
                description="Last successful sync of the underlying series.",
            ),
        ],
        responses={
            (200, "application/json"): PricePageSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV: timestamp,price_usd[,partial]"),
            **_PROBLEMS,
            503: OpenApiResponse(
                ProblemSerializer, description="price_source_unavailable: the source failed and nothing is stored"
            ),
        },
    ),
)
class DatasetPricesApi(APIView):
    """USD price history of a dataset at one frequency, for quants entitled to it."""

    permission_classes = [IsAuthenticated, IsQuant]
    renderer_classes = [JSONRenderer, CSVRenderer]

    def get(self, request: Request, symbol: str) -> HttpResponse:
        dataset = dataset_get(symbol=symbol)
        now = timezone.now()
        params = PriceQuerySerializer.read(
            request, symbol=dataset.symbol, offered=[f.frequency for f in dataset.frequencies.all()], now=now
        )
        # What the caller must be entitled to is checked first, then the range and the paging.
        params.raise_first(among=("frequency", "format"))
        frequency, fmt = params.values["frequency"], params.values["format"]
        grant_require(account=request_account(request), dataset=dataset, frequency=frequency)
        params.raise_first()
        start, end = params.validated_data["start"], params.validated_data["end"]
        page_size, after = params.validated_data["page_size"], params.validated_data["cursor"]
        from_ = max(start, after + TINY) if after is not None else start

        ensured = services.prices_ensure_stored(dataset=dataset, frequency=frequency, start=from_, end=end, now=now)
        window_end = ensured.served_until
        rows = selectors.price_page(
            dataset_id=dataset.pk,
            frequency=frequency,
            start=start,
            end=window_end,
            after=after,
            size=page_size,
            layout=fmt,
        )
        if ensured.error is not None and not rows:
            raise PriceSourceUnavailable(
                f"The price source is unavailable ({ensured.error}) and nothing is stored for {dataset.symbol} "
                f"{frequency} in this range yet. Try again later.",
                source=settings.PRICE_SOURCE,
            )

        next_after: datetime | None = None
        if rows.has_more:
            next_after = rows.last
        elif window_end < end:
            next_after = rows.last if rows.last is not None else window_end - TINY
        next_url = None
        if next_after is not None:
            query = {
                "frequency": frequency,
                "start": iso_utc(start),
                "end": iso_utc(end),
                "page_size": page_size,
                "cursor": _cursor_encode(next_after),
            }
            if fmt == "csv":
                query["format"] = fmt
            next_url = request.build_absolute_uri(request.path) + "?" + urlencode(query)

        data_as_of, latest_point_at = rows.data_as_of, rows.latest_point_at
        sources = sorted(rows.sources) or [rows.series_source or settings.PRICE_SOURCE]
        source = ",".join(sources)
        complete = ensured.error is None
        monthly = frequency == Frequency.MONTH

        if fmt == "csv":
            response = self._csv(rows, monthly=monthly)
            response["Content-Disposition"] = f'inline; filename="{dataset.symbol}-{frequency}.csv"'
            if next_url:
                response["Link"] = f'<{next_url}>; rel="next"'
        else:
            head: dict[str, Any] = {
                "dataset": dataset.symbol,
                "frequency": frequency,
                "source": source,
                "start": iso_utc(start),
                "end": iso_utc(end),
                "data_as_of": iso_utc(data_as_of) if data_as_of else None,
                "latest_point_at": iso_utc(latest_point_at) if latest_point_at else None,
                "complete": complete,
            }
            if not complete:
                head["warning"] = f"The price source failed ({ensured.error}); only stored points are shown."
            head["count"] = len(rows)
            response = self._json(head, rows, next_url)
        response["X-Price-Source"] = source
        response["X-Data-Complete"] = "true" if complete else "false"
        if data_as_of is not None:
            response["X-Data-As-Of"] = iso_utc(data_as_of)
        return response

    @staticmethod
    def _json(head: dict[str, Any], rows: PricePage, next_url: str | None) -> HttpResponse:
        body = "".join(
            (
                json.dumps(head, separators=(",", ":"))[:-1],
                ',"results":[',
                rows.text,
                '],"next":',
                json.dumps(next_url),
                "}",
            )
        )
        return HttpResponse(body.encode(), content_type="application/json")

    @staticmethod
    def _csv(rows: PricePage, *, monthly: bool) -> HttpResponse:
        header = "timestamp,price_usd,partial\n" if monthly else "timestamp,price_usd\n"
        return HttpResponse((header + rows.text).encode(), content_type="text/csv; charset=utf-8")

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(response, Response):
            # Error documents are JSON even when CSV was asked for.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


def _first_day_from(moment: datetime) -> date:
    """The first UTC day whose 00:00 is at or after ``moment`` (a snapshot is dated at 00:00 UTC)."""
    day = moment.date()
    return day if moment == datetime(day.year, day.month, day.day, tzinfo=UTC) else day + timedelta(days=1)


class MarketCapPagination(CursorPagination):
    ordering = "date"


@extend_schema_view(
    get=extend_schema(
        operation_id="dataset_market_caps",
        tags=["pricing"],
        parameters=[
            OpenApiParameter(
                "start",
                OpenApiTypes.DATETIME,
                description="Inclusive; ISO 8601, no offset means UTC. A snapshot is dated at its day's 00:00 UTC.",
            ),
            OpenApiParameter("end", OpenApiTypes.DATETIME, description="Exclusive; ISO 8601, no offset means UTC."),
        ],
        responses={200: MarketCapOutputSerializer(many=True), **_PROBLEMS},
    ),
)
class DatasetMarketCapsApi(generics.ListAPIView):
    """Daily market-cap snapshots of a dataset, oldest first, for quants with any grant in force on it."""

    permission_classes = [IsAuthenticated, IsQuant]
    serializer_class = MarketCapOutputSerializer
    pagination_class = MarketCapPagination
    filter_backends: list = []

    def get_queryset(self) -> Any:
        dataset = dataset_get(symbol=self.kwargs["symbol"])
        grant_require(account=request_account(self.request), dataset=dataset, frequency=None)
        query = MarketCapQuerySerializer.parse(self.request)
        start, end = query["start"], query["end"]
        return selectors.market_cap_list(
            dataset=dataset,
            start=_first_day_from(start) if start else None,
            end=_first_day_from(end) if end else None,
        )


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
