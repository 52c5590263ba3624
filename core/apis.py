from typing import Any

from django.conf import settings
from django.db import connection
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import PROBLEM_CONTENT_TYPE, RETRY_AFTER_UNAVAILABLE, problem

_status_serializer = inline_serializer("HealthStatus", {"status": serializers.CharField()})


@extend_schema_view(
    get=extend_schema(responses={200: _status_serializer}, tags=["health"]),
)
class HealthApi(APIView):
    """Liveness: the process is up and serving requests."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # probes from load balancers must never be refused

    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means "not ready"
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_broker() -> str | None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return None
    import redis

    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@extend_schema_view(
    get=extend_schema(
        responses={
            200: _status_serializer,
            503: OpenApiResponse(description="Problem `dependency_unavailable`; `checks` names what failed."),
        },
        tags=["health"],
    ),
)
class ReadinessApi(APIView):
    """Readiness: the database and the broker answer."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # probes from load balancers must never be refused

    def get(self, request: Request) -> Response:
        checks: dict[str, Any] = {"database": _check_database(), "broker": _check_broker()}
        failing = sorted(name for name, error in checks.items() if error)
        if failing:
            body = problem(
                503,
                "dependency_unavailable",
                f"Not ready: {', '.join(failing)} unreachable.",
                instance=request.path,
                checks={name: error or "ok" for name, error in checks.items()},
            )
            return Response(
                body,
                status=503,
                content_type=PROBLEM_CONTENT_TYPE,
                headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)},
            )
        return Response({"status": "ok", "checks": dict.fromkeys(checks, "ok")})


class FormatParameterNegotiation(DefaultContentNegotiation):
    """Honours ``?format=`` (``json`` or ``yaml``) as well as ``Accept``."""

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return super().select_renderer(request, renderers, format_suffix or request.query_params.get("format"))

    def filter_renderers(self, renderers: Any, format: str) -> Any:
        try:
            return super().filter_renderers(renderers, format)
        except Http404:
            formats = ", ".join(sorted({renderer.format for renderer in renderers}))
            raise NotAcceptable(f"format must be one of: {formats}.") from None


class SchemaApi(SpectacularAPIView):
    """The OpenAPI schema: YAML by default, JSON with ``?format=json`` or ``Accept: application/json``."""

    content_negotiation_class = FormatParameterNegotiation
