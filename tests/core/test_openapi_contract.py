"""The served OpenAPI schema, as third-party tools read it.

openapi-spec-validator and openapi-core (default settings) accept it; real answers of the
server validate against it with openapi-core, and every status code and header they carry
is declared on the operation that sends it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from django.urls import resolve
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate

from accounts.models import Role
from tests.deals.support import AUTHORIZED_BUYERS, DEALS, deal_body

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
# Headers a client acts on: each must be declared where the server sends it.
CONTRACT_HEADERS = ("ETag", "Location", "Link", "Retry-After", "Idempotent-Replayed", "WWW-Authenticate")


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


@pytest.fixture(scope="module")
def openapi(schema: dict[str, Any]) -> OpenAPI:
    # openapi-core decodes only the JSON media types it knows; problem+json is registered as its
    # documentation says to for any other JSON type.
    return OpenAPI.from_dict(schema, config=Config(extra_media_type_deserializers={PROBLEM: json.loads}))


def test_format_json_returns_json_and_the_default_is_yaml(anon_client: Any) -> None:
    as_json = anon_client.get("/api/schema/", {"format": "json"})
    assert "json" in as_json["Content-Type"]
    assert json.loads(as_json.content)["openapi"].startswith("3.")
    assert anon_client.get("/api/schema/", {"format": "xml"}).status_code == 406
    as_yaml = anon_client.get("/api/schema/")
    assert "openapi" in as_yaml["Content-Type"] and "json" not in as_yaml["Content-Type"]
    assert yaml.safe_load(as_yaml.content) == json.loads(as_json.content)


def test_the_schema_is_valid_for_openapi_spec_validator_and_loads_in_openapi_core(schema: dict[str, Any]) -> None:
    validate(schema)
    OpenAPI.from_dict(schema)  # default settings: validates the spec, defaults included


def test_servers_are_declared(schema: dict[str, Any]) -> None:
    assert schema["servers"] and all("url" in server for server in schema["servers"])


def test_nullable_objects_are_typed(schema: dict[str, Any]) -> None:
    untyped: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get("nullable") and "type" not in node:
                untyped.append(path)
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")

    walk(schema, "")
    assert untyped == []


def test_conditional_and_idempotency_request_headers_are_declared(schema: dict[str, Any]) -> None:
    def headers(path: str, method: str) -> set[str]:
        return {p["name"] for p in schema["paths"][path][method].get("parameters", []) if p["in"] == "header"}

    assert "If-Match" in headers("/api/v1/deals/{deal_id}", "patch")
    assert "If-None-Match" in headers("/api/v1/deals/{deal_id}", "get")
    posts = [path for path, item in schema["paths"].items() if path.startswith("/api/v1/") and "post" in item]
    assert posts
    assert all("Idempotency-Key" in headers(path, "post") for path in posts)
    assert "409" in schema["paths"]["/api/v1/deals/{deal_id}"]["patch"]["responses"]


def _check(openapi: OpenAPI, schema: dict[str, Any], response: Any) -> None:
    """openapi-core validates the answer against its operation, and the contract headers it
    carries are declared on that operation's answer."""
    request = response.wsgi_request
    openapi.validate_response(
        MockRequest("http://testserver", request.method.lower(), request.path_info),
        MockResponse(
            response.content,
            status_code=response.status_code,
            content_type=response.get("Content-Type", "").split(";")[0],
            headers=dict(response.items()),
        ),
    )
    path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", resolve(request.path_info).route)
    declared = schema["paths"][path][request.method.lower()]["responses"][str(response.status_code)]
    for header in CONTRACT_HEADERS:
        if response.has_header(header):
            assert header in declared.get("headers", {}), (path, response.status_code, header)


def test_the_answers_the_server_sends_are_declared(
    openapi: OpenAPI, schema: dict[str, Any], make_client: Any, settings: Any, catalog: None
) -> None:
    seller, buyer = make_client(Role.SELLER), make_client(Role.BUYER)
    created = seller.post(DEALS, deal_body(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    _check(openapi, schema, created)  # 201 with ETag, Location
    replayed = seller.post(DEALS, deal_body(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert replayed["Idempotent-Replayed"] == "true"
    _check(openapi, schema, replayed)
    url = f"{DEALS}/{created.json()['id']}"
    etag = created["ETag"]
    _check(openapi, schema, seller.get(url, HTTP_IF_NONE_MATCH=f"W/{etag}"))  # 304 with ETag
    _check(openapi, schema, seller.patch(url, {"status": "sold"}, format="json", HTTP_IF_MATCH=etag))
    _check(openapi, schema, seller.patch(url, {"name": "x"}, format="json"))  # 409 deal_sold
    _check(openapi, schema, seller.patch(url, {"name": "x"}, format="json", HTTP_IF_MATCH=etag))  # 412
    _check(openapi, schema, seller.get(DEALS, {"nope": "1"}))  # 400 unknown parameter
    _check(openapi, schema, seller.get(DEALS, {"page_size": "0"}))  # 400 page_size
    _check(openapi, schema, seller.post(AUTHORIZED_BUYERS, {"buyer": "nobody"}, format="json"))  # 400
    _check(openapi, schema, buyer.get(url))  # 404: not authorised
    _check(openapi, schema, seller.get(DEALS, HTTP_ACCEPT="text/csv"))  # 406
    _check(openapi, schema, buyer.get("/healthz?probe=%00"))  # 400 invalid_url, outside /api/ too
    settings.API_MAX_BODY_BYTES = 100
    _check(openapi, schema, seller.post(DEALS, deal_body(name="x" * 200), format="json"))  # 413
    settings.API_FAILURE_RATE_LIMIT = "1/min"
    anonymous = make_client(Role.BUYER)
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer nope")
    _check(openapi, schema, anonymous.get(DEALS, REMOTE_ADDR="198.51.100.7"))  # 401
    _check(openapi, schema, anonymous.get(DEALS, REMOTE_ADDR="198.51.100.7"))  # 429 with Retry-After


def test_prices_answers_are_declared(
    openapi: OpenAPI, schema: dict[str, Any], quant_client: Any, settings: Any, catalog: None
) -> None:
    from catalog.models import Dataset
    from tests.factories import GrantFactory

    settings.PRICE_SOURCE = "synthetic"
    GrantFactory(account=quant_client.account, dataset=Dataset.objects.get(symbol="BTC"), frequency="1d")
    query = {"frequency": "1d", "start": "2023-01-01", "end": "2023-01-10", "page_size": "3"}
    _check(openapi, schema, quant_client.get("/api/v1/datasets/BTC/prices", query))
    csv = quant_client.get("/api/v1/datasets/BTC/prices", {**query, "format": "csv"})
    assert csv.has_header("Link")
    _check(openapi, schema, csv)
    settings.PRICE_SOURCE = "coincap"
    settings.COINCAP_BASE_URL = "http://127.0.0.1:1/v3"
    settings.COINCAP_MAX_RETRIES = 0
    unavailable = quant_client.get(
        "/api/v1/datasets/BTC/prices", {"frequency": "1d", "start": "2020-01-01", "end": "2020-01-03"}
    )
    assert unavailable.status_code == 503
    _check(openapi, schema, unavailable)
