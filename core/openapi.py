"""OpenAPI post-processing: every error answer the API can give is described, once, here.

Views declare their success answers and the errors particular to them (409 codes, 412
with the current version, 503 from a source). This hook adds what every view shares,
so the schema never disagrees with the server:

- error answers are RFC 9457 problems (``application/problem+json``, ``Problem``);
- 400 where the operation reads a body or parameters, 401/403 where it needs a key,
  404 where the path names an object, 413/415 where it reads a body, 429 on every
  rate-limited operation (everything under ``/api/v1/``);
- every POST under ``/api/`` accepts ``Idempotency-Key`` (core.idempotency): 409 while
  the first request runs, 422 when the key was used with another body; a replayed
  answer carries ``Idempotent-Replayed``;
- every operation may answer 400 (a NUL byte in the URL; under ``/api/v1/`` also an
  undeclared query parameter), 406 (an ``Accept`` nothing serves) and 413 (a body over
  the limit), and all but the health probes 429 (rate limits, including the
  per-address limit on 401 and 404 answers); 429 and 503 carry ``Retry-After``, 401
  ``WWW-Authenticate``;
- request bodies carry no ``default``: a generated client would send it on every
  PATCH, and the server applies its own defaults on create;
- a nullable reference is ``oneOf`` the object and a typed null, so strict OpenAPI 3.0
  tools both type it and accept null.
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
            "description": "validation_error only: dotted field path (`items.1.price`; `non_field_errors` for "
            "the body as a whole) or query parameter name -> messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "retry_after": {"type": "integer", "description": "throttled only: seconds to wait."},
    },
    "required": ["type", "title", "status", "detail", "code"],
}

DESCRIPTIONS = {
    400: "Problem `validation_error` (`errors` maps each dotted field path, or an unknown query parameter, "
    "to its messages), `parse_error`, or `invalid_url` (a NUL byte in the URL).",
    401: "Problem `not_authenticated` or `authentication_failed`: send `Authorization: Api-Key <key>`.",
    403: "Problem `permission_denied`: this operation is not for your role.",
    404: "Problem `not_found`: nothing you may see lives at this address.",
    406: "Problem `not_acceptable`: no representation matches `Accept` (or `format`).",
    409: "Problem: the request conflicts with the current state (`code` says how).",
    413: "Problem `payload_too_large`: the body is over the size limit.",
    415: "Problem `unsupported_media_type`: send `application/json`.",
    422: "Problem `idempotency_key_reused`: this Idempotency-Key was sent with another body.",
    429: "Problem `throttled`: too many requests, or too many 401/404 answers from this address; "
    "`Retry-After` says when to come back.",
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
IDEMPOTENT_REPLAYED = {
    "Idempotent-Replayed": {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "Present when this is the stored answer to an earlier request with the same Idempotency-Key.",
    }
}
WWW_AUTHENTICATE = {
    "WWW-Authenticate": {"schema": {"type": "string", "enum": ["Api-Key"]}, "description": "The scheme to use."}
}
HEALTH_PATHS = ("/healthz", "/readyz")
SERVERS = [{"url": "/", "description": "The server this schema is served from."}]


def _strip_defaults(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("default", None)
        for value in node.values():
            _strip_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _strip_defaults(value)


def _request_components(result: dict[str, Any]) -> set[str]:
    """Names of the component schemas that request bodies use (directly or nested)."""
    schemas = result.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    stack: list[Any] = [
        operation.get("requestBody", {})
        for item in result.get("paths", {}).values()
        for method, operation in item.items()
        if isinstance(operation, dict) and method in ("post", "put", "patch")
    ]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in seen and name in schemas:
                    seen.add(name)
                    stack.append(schemas[name])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return seen


NULL_OBJECT = {"type": "object", "nullable": True, "enum": [None]}


def _type_nullable_objects(node: Any, schemas: dict[str, Any]) -> None:
    """``{allOf: [$ref], nullable: true}`` (which OpenAPI 3.0 validators refuse null for, and
    which has no type) becomes ``{oneOf: [$ref, {type: object, nullable: true, enum: [null]}]}``:
    every branch typed, and null valid."""
    if isinstance(node, dict):
        parts = node.get("allOf")
        if node.get("nullable") and "type" not in node and isinstance(parts, list) and len(parts) == 1:
            ref = parts[0].get("$ref", "") if isinstance(parts[0], dict) else ""
            target = schemas.get(ref.rsplit("/", 1)[-1], {})
            if target.get("type") == "object":
                del node["allOf"], node["nullable"]
                node["oneOf"] = [parts[0], dict(NULL_OBJECT)]
        for value in node.values():
            _type_nullable_objects(value, schemas)
    elif isinstance(node, list):
        for value in node:
            _type_nullable_objects(value, schemas)


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
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", PROBLEM_SCHEMA)
    result["servers"] = SERVERS
    for name in _request_components(result):
        _strip_defaults(schemas[name].get("properties", {}))
    _type_nullable_objects(result, schemas)
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
            # Every path: a NUL byte in the URL (400), an Accept no renderer serves (406), a body
            # over the limit (413); every path but the health probes: the probing limit (429).
            wanted: dict[int, str | None] = {400: None, 406: None, 413: None}
            if path not in HEALTH_PATHS:
                wanted[429] = None
            if _needs_key(operation, result):
                wanted[401] = wanted[403] = None
            if any(p["in"] == "path" for p in parameters):
                wanted[404] = None
            if has_body:
                wanted[415] = None
            if api and method == "post":
                wanted[409] = IDEMPOTENCY_409
                wanted[422] = None

            for status, description in wanted.items():
                if str(status) not in responses:
                    responses[str(status)] = _error(status, description)
                elif status == 409 and description and description not in responses["409"].get("description", ""):
                    responses["409"]["description"] = f"{responses['409'].get('description', '')} Or: {description}"
            if "401" in responses:
                responses["401"].setdefault("headers", {}).update(WWW_AUTHENTICATE)
            for limited in ("429", "503"):
                if limited in responses:
                    responses[limited].setdefault("headers", {}).update(RETRY_AFTER)
            if api and method == "post":
                for status, response in responses.items():
                    if status.startswith("2"):
                        response.setdefault("headers", {}).update(IDEMPOTENT_REPLAYED)
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    _as_problem(response)
    return result


def _as_problem(response: dict[str, Any]) -> None:
    """An error answer declared by a view: served as ``application/problem+json``, whatever it listed."""
    content = response.get("content") or {}
    schema = next((media["schema"] for media in content.values() if "schema" in media), PROBLEM_REF)
    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": schema}}
