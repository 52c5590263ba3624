"""OpenAPI post-processing: every error answer the API can give is described, once, here.

Views declare their success answers and the errors particular to them (409 codes, 412
with the current version, 503 from a source). This hook adds what every view shares,
so the schema never disagrees with the server:

- error answers are RFC 9457 problems (``application/problem+json``, ``Problem``);
- 400 where the operation reads a body or parameters, 401/403 where it needs a key,
  404 where the path names an object, 413/415 where it reads a body, 429 on every
  rate-limited operation (everything under ``/api/v1/``);
- every POST under ``/api/`` accepts ``Idempotency-Key`` (core.idempotency): 409 while
  the first request runs, 422 when the key was used with another body.
"""

from __future__ import annotations

from typing import Any

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details. `code` is stable and meant for machines.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "validation_error only: field -> messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "retry_after": {"type": "integer", "description": "throttled only: seconds to wait."},
    },
    "required": ["type", "title", "status", "detail", "code"],
}

DESCRIPTIONS = {
    400: "Problem `validation_error` (`errors` names each field) or `parse_error`.",
    401: "Problem `not_authenticated` or `authentication_failed`: send `Authorization: Api-Key <key>`.",
    403: "Problem `permission_denied`: this operation is not for your role.",
    404: "Problem `not_found`: nothing you may see lives at this address.",
    409: "Problem: the request conflicts with the current state (`code` says how).",
    413: "Problem `payload_too_large`: the body is over the size limit.",
    415: "Problem `unsupported_media_type`: send `application/json`.",
    422: "Problem `idempotency_key_reused`: this Idempotency-Key was sent with another body.",
    429: "Problem `throttled`: too many requests; `Retry-After` says when to come back.",
}

IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Makes a retried POST safe: a repeat with the same body gets the first answer again "
    "(`Idempotent-Replayed: true`) for 24 hours.",
}
IDEMPOTENCY_409 = (
    "Problem `idempotency_key_in_use`: a request with this Idempotency-Key is still running; or "
    "`idempotency_replay_unavailable`: it was done and its answer, which showed a secret once, is not kept."
)

RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}


def _needs_key(operation: dict[str, Any], schema: dict[str, Any]) -> bool:
    security = operation.get("security", schema.get("security")) or []
    return bool(security) and {} not in security


def _error(status: int, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or DESCRIPTIONS[status],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
    }


def problem_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the shared error answers of every operation."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("Problem", PROBLEM_SCHEMA)
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            parameters = operation.setdefault("parameters", [])
            api = path.startswith("/api/v1/")
            if api and method == "post" and not any(p.get("name") == "Idempotency-Key" for p in parameters):
                parameters.append(IDEMPOTENCY_KEY)

            has_body = "requestBody" in operation
            wanted: dict[int, str | None] = {}
            if has_body or any(p["in"] in ("query", "header") for p in parameters):
                wanted[400] = None
            if _needs_key(operation, result):
                wanted[401] = wanted[403] = None
            if any(p["in"] == "path" for p in parameters):
                wanted[404] = None
            if has_body:
                wanted[413] = wanted[415] = None
            if api and method == "post":
                wanted[409] = IDEMPOTENCY_409
                wanted[422] = None
            if api:
                wanted[429] = None

            for status, description in wanted.items():
                if str(status) not in responses:
                    responses[str(status)] = _error(status, description)
                elif status == 409 and description and description not in responses["409"].get("description", ""):
                    responses["409"]["description"] = f"{responses['409'].get('description', '')} Or: {description}"
            if "429" in responses:
                responses["429"].setdefault("headers", RETRY_AFTER)
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    _as_problem(response)
    return result


def _as_problem(response: dict[str, Any]) -> None:
    """An error answer declared by a view: served as ``application/problem+json``, whatever it listed."""
    content = response.get("content") or {}
    schema = next((media["schema"] for media in content.values() if "schema" in media), PROBLEM_REF)
    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": schema}}
