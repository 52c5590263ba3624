"""Property-based tests of every operation against the project's own OpenAPI schema.

Schemathesis reads ``/api/schema/`` from the WSGI application in-process, generates
requests for every operation (with the API key of the role the operation is for, and
path parameters that are either generated or the ids of real objects), and checks that
no answer is a server error and that every answer is documented: its status code, its
content type and its body's schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.security.conftest import World

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def role_for(path: str) -> str | None:
    """The role whose key an operation is called with; None for public operations."""
    if path.startswith("/api/v1/ops/"):
        return "ops"
    if path.startswith(("/api/v1/deals", "/api/v1/authorized-buyers")):
        return "seller"
    if path.startswith("/api/v1/authorized-sellers"):
        return "buyer"
    if path.startswith(("/api/v1/access-requests", "/api/v1/entitlements")) or path.endswith(
        ("/prices", "/market-caps")
    ):
        return "quant"
    if path.startswith(("/api/v1/webhook-", "/api/v1/events", "/api/v1/me")):
        return "buyer"
    return None


# Real objects a generated path parameter is swapped for half of the time, by (path prefix, parameter).
REAL_OBJECTS = {
    ("/api/v1/ops/accounts/", "ref"): "quant_ref",
    ("/api/v1/ops/accounts/", "prefix"): "key_prefix",
    ("/api/v1/authorized-buyers/", "ref"): "buyer_ref",
}


@pytest.fixture
def in_test_transaction() -> Iterator[None]:
    """Let the WSGI application serve requests inside the test's transaction, as Django's test client does:
    the end of a request must not return the test's connection to the pool."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# Loaded once, at collection, from the application itself: one test per operation.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
REAL = "real-object:"


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Half of the cases address the fixture's real objects instead of generated ids."""
    if not path_parameters:
        return st.just(path_parameters)
    path = context.operation.path
    real = {
        name: REAL
        + next(
            (obj for (prefix, param), obj in REAL_OBJECTS.items() if path.startswith(prefix) and param == name), name
        )
        for name in path_parameters
    }
    return st.sampled_from([path_parameters, real])


@schema.parametrize()
@hypothesis.settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
    database=None,
    derandomize=True,
)
def test_every_operation_answers_as_documented(case: Any, world: World, in_test_transaction: None) -> None:
    role = role_for(case.operation.path)
    headers = {}
    if role is not None:
        headers["Authorization"] = world.client(role)._credentials["HTTP_AUTHORIZATION"]  # type: ignore[attr-defined]
    for name, value in (case.path_parameters or {}).items():
        if isinstance(value, str) and value.startswith(REAL):
            case.path_parameters[name] = world.objects[value.removeprefix(REAL)]
    case.call_and_validate(headers=headers, checks=CHECKS)
