"""One error format for the whole API: RFC 9457 problem details.

Every error body is ``{"type", "title", "status", "detail", "code", "instance"}``
with ``Content-Type: application/problem+json``; ``status`` is always the integer
HTTP status. Validation errors add ``errors``: one flat object, in every app, from a
dotted field path (``items.1.price``, ``discount.amount``; ``non_field_errors`` for the
body as a whole) to a list of messages. ``code`` is stable and meant for machines;
``title`` and ``detail`` are for people. A 503 carries ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://backoffice.example/problems/"


class ProblemError(exceptions.APIException):
    """Base for domain errors raised by services and selectors.

    Subclasses set ``status_code``, ``default_code`` and ``default_detail``;
    extra keyword arguments become members of the problem body.
    """

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request could not be processed."

    def __init__(self, detail: str | None = None, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail=detail, code=code)
        self.code = code or self.default_code
        self.extra = extra


class Conflict(ProblemError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state of the resource."


class PreconditionFailed(ProblemError):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = "The resource has changed since you last read it."


class ServiceUnavailable(ProblemError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "A dependency is unavailable; try again later."


class PayloadTooLarge(ProblemError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class NotFound(ProblemError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"
    default_detail = "Not found."


class FieldError(ProblemError):
    """A business-rule violation on one field of the input, answered as a 400."""

    default_code = "validation_error"
    default_detail = "The request body is invalid."

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors={field: [message]})


# Members every problem has; an exception's extra members never replace them.
RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "instance"})
# Seconds a client is told to wait before retrying a 503.
RETRY_AFTER_UNAVAILABLE = 30


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

_DRF_CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "parse_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def problem(
    status_code: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": _TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    clashing = RESERVED_MEMBERS.intersection(extra)
    if clashing:
        raise ValueError(f"Problem members {sorted(clashing)} are reserved.")
    body.update(extra)
    return body


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Validation errors as one flat object: dotted field path -> messages.

    ``{"items": [{}, {"price": ["..."]}]}`` becomes ``{"items.1.price": ["..."]}``; errors on
    an object as a whole stay on its own path (``non_field_errors`` at the top)."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors":
                path = prefix or "non_field_errors"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for sub, messages in flatten_errors(value, path).items():
                flat.setdefault(sub, []).extend(messages)
    elif isinstance(detail, list) and any(isinstance(value, dict | list) for value in detail):
        for index, value in enumerate(detail):
            if not value:
                continue
            path = f"{prefix}.{index}" if prefix else str(index)
            for sub, messages in flatten_errors(value, path).items():
                flat.setdefault(sub, []).extend(messages)
    elif isinstance(detail, list):
        flat.setdefault(prefix or "non_field_errors", []).extend(str(message) for message in detail)
    else:
        flat.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return flat


def _validation_summary(errors: Any) -> str:
    if isinstance(errors, dict) and errors:
        fields = ", ".join(str(key) for key in errors)
        return f"Invalid input in: {fields}."
    if isinstance(errors, list) and errors:
        return str(errors[0])
    return "Invalid input."


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler that answers every error as problem details."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    instance = request.path if request is not None else None

    if isinstance(exc, ProblemError):
        body = problem(response.status_code, exc.code, str(exc.detail), instance=instance, **exc.extra)
    elif isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        body = problem(
            response.status_code,
            "validation_error",
            _validation_summary(errors),
            instance=instance,
            errors=errors,
        )
    else:
        assert isinstance(exc, exceptions.APIException)
        code = _DRF_CODES.get(type(exc))
        if code is None:
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else "error"
        detail = str(exc.detail)
        if isinstance(exc, exceptions.NotAuthenticated):
            detail = "Authentication credentials were not provided: send `Authorization: Api-Key <key>`."
        body = problem(response.status_code, code, detail, instance=instance)
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            body["retry_after"] = int(wait)

    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    if response.status_code == 503 and not response.has_header("Retry-After"):
        response["Retry-After"] = str(RETRY_AFTER_UNAVAILABLE)
    return response


def problem_response(
    status_code: int, code: str, detail: str, request: HttpRequest | None = None, **extra: Any
) -> HttpResponse:
    """A plain Django response in the problem format, for code outside DRF views."""
    body = problem(status_code, code, detail, instance=request.path if request else None, **extra)
    response = HttpResponse(json.dumps(body), status=status_code, content_type=PROBLEM_CONTENT_TYPE)
    if status_code == 503:
        response["Retry-After"] = str(RETRY_AFTER_UNAVAILABLE)
    return response


def not_found_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(404, "not_found", "No resource lives at this address.", request)


def server_error_view(request: HttpRequest) -> HttpResponse:
    return problem_response(500, "server_error", "An unexpected error occurred; it has been logged.", request)
