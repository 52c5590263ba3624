"""Who may do what: every route of the URLconf, every method it serves, every kind of caller.

The table below is the authorisation design written down as data. Each row is a route
pattern exactly as the URLconf spells it; each method maps to the status expected for
each caller, in the column order of ``CALLERS``:

    anonymous, quant, ops, seller, buyer[, other]

``quant``, ``seller`` and ``buyer`` are the accounts that own the objects the fixtures
create (the buyer is authorised by the seller; the webhook endpoint and its delivery
belong to the buyer). ``other`` is another account with the role of the owner of the
object in the path (``OWNER_ROLE``); it appears on every route with path parameters
and nowhere else. Mutations send valid bodies, so a refusal is authorisation, never
validation, and the owner gets the success status.

A route in the URLconf without a row fails, a row whose route is gone fails, and a
method the view serves without a row (or a row for a method it does not serve) fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from tests.deals.support import deal_body
from tests.security.conftest import PUBLIC_URL, World

ANON, QUANT, OPS, SELLER, BUYER, OTHER = "anonymous", "quant", "ops", "seller", "buyer", "other"
CALLERS = (ANON, QUANT, OPS, SELLER, BUYER, OTHER)

# route -> method -> (anonymous, quant, ops, seller, buyer[, other])
MATRIX: dict[str, dict[str, tuple[int, ...]]] = {
    # --- start page, health, schema, docs: public ----------------------------------------
    "/": {"GET": (200, 200, 200, 200, 200)},
    "/healthz": {"GET": (200, 200, 200, 200, 200)},
    "/readyz": {"GET": (200, 200, 200, 200, 200)},
    "/api/schema/": {"GET": (200, 200, 200, 200, 200)},
    "/api/docs/": {"GET": (200, 200, 200, 200, 200)},
    # --- accounts ---------------------------------------------------------------------------
    "/api/v1/me": {"GET": (401, 200, 200, 200, 200)},
    "/api/v1/ops/accounts": {
        "GET": (401, 403, 200, 403, 403),
        "POST": (401, 403, 201, 403, 403),
    },
    "/api/v1/ops/accounts/<str:ref>": {
        "GET": (401, 403, 200, 403, 403, 403),
        "PATCH": (401, 403, 200, 403, 403, 403),
    },
    "/api/v1/ops/accounts/<str:ref>/api-keys": {
        "GET": (401, 403, 200, 403, 403, 403),
        "POST": (401, 403, 201, 403, 403, 403),
    },
    "/api/v1/ops/accounts/<str:ref>/api-keys/<str:prefix>/revoke": {
        "POST": (401, 403, 200, 403, 403, 403),
    },
    # --- catalog: public ---------------------------------------------------------------------
    "/api/v1/datasets": {"GET": (200, 200, 200, 200, 200)},
    "/api/v1/datasets/<str:symbol>": {"GET": (200, 200, 200, 200, 200, 200)},
    # --- entitlements: the quant's own ---------------------------------------------------
    "/api/v1/access-requests": {
        "GET": (401, 200, 403, 403, 403),
        "POST": (401, 201, 403, 403, 403),
    },
    "/api/v1/access-requests/<int:request_id>": {"GET": (401, 200, 403, 403, 403, 404)},
    "/api/v1/access-requests/<int:request_id>/cancel": {"POST": (401, 200, 403, 403, 403, 404)},
    "/api/v1/entitlements": {"GET": (401, 200, 403, 403, 403)},
    # --- entitlements: Ops ------------------------------------------------------------------
    "/api/v1/ops/access-requests": {"GET": (401, 403, 200, 403, 403)},
    "/api/v1/ops/access-requests/<int:request_id>": {"GET": (401, 403, 200, 403, 403, 403)},
    "/api/v1/ops/access-requests/<int:request_id>/approve": {"POST": (401, 403, 200, 403, 403, 403)},
    "/api/v1/ops/access-requests/<int:request_id>/refuse": {"POST": (401, 403, 200, 403, 403, 403)},
    "/api/v1/ops/grants": {
        "GET": (401, 403, 200, 403, 403),
        "POST": (401, 403, 201, 403, 403),
    },
    "/api/v1/ops/grants/<int:grant_id>": {
        "GET": (401, 403, 200, 403, 403, 403),
        "PATCH": (401, 403, 200, 403, 403, 403),
    },
    "/api/v1/ops/grants/<int:grant_id>/revoke": {"POST": (401, 403, 200, 403, 403, 403)},
    # --- pricing: quants entitled to the dataset (403 not_entitled otherwise, by design) ----
    "/api/v1/datasets/<str:symbol>/prices": {"GET": (401, 200, 403, 403, 403, 403)},
    "/api/v1/datasets/<str:symbol>/market-caps": {"GET": (401, 200, 403, 403, 403, 403)},
    # --- deals: a buyer the seller did not authorise gets 404, never 403 ---------------------
    "/api/v1/deals": {
        "GET": (401, 403, 403, 200, 200),
        "POST": (401, 403, 403, 201, 403),
    },
    "/api/v1/deals/<uuid:deal_id>": {
        "GET": (401, 403, 403, 200, 200, 404),
        "PATCH": (401, 403, 403, 200, 403, 404),
    },
    "/api/v1/authorized-buyers": {
        "GET": (401, 403, 403, 200, 403),
        "POST": (401, 403, 403, 201, 403),
    },
    "/api/v1/authorized-buyers/<str:ref>": {"DELETE": (401, 403, 403, 204, 403, 404)},
    "/api/v1/authorized-sellers": {"GET": (401, 403, 403, 403, 200)},
    # --- webhooks: any role, own endpoints only (the buyer's here) -------------------------
    "/api/v1/webhook-endpoints": {
        "GET": (401, 200, 200, 200, 200),
        "POST": (401, 201, 201, 201, 201),
    },
    "/api/v1/webhook-endpoints/<int:endpoint_id>": {
        "GET": (401, 404, 404, 404, 200, 404),
        "PATCH": (401, 404, 404, 404, 200, 404),
        "DELETE": (401, 404, 404, 404, 204, 404),
    },
    "/api/v1/webhook-endpoints/<int:endpoint_id>/rotate-secret": {"POST": (401, 404, 404, 404, 200, 404)},
    "/api/v1/webhook-endpoints/<int:endpoint_id>/ping": {"POST": (401, 404, 404, 404, 202, 404)},
    "/api/v1/webhook-endpoints/<int:endpoint_id>/deliveries": {"GET": (401, 404, 404, 404, 200, 404)},
    "/api/v1/webhook-endpoints/<int:endpoint_id>/redeliver-failed": {"POST": (401, 404, 404, 404, 202, 404)},
    "/api/v1/webhook-deliveries/<int:delivery_id>/redeliver": {"POST": (401, 404, 404, 404, 202, 404)},
    "/api/v1/events": {"GET": (401, 200, 200, 200, 200)},
}

# The role of the owner of the object each parameterised route addresses: "other" is another account of it.
OWNER_ROLE: dict[str, str] = {
    "/api/v1/ops/accounts/<str:ref>": QUANT,
    "/api/v1/ops/accounts/<str:ref>/api-keys": QUANT,
    "/api/v1/ops/accounts/<str:ref>/api-keys/<str:prefix>/revoke": QUANT,
    "/api/v1/datasets/<str:symbol>": QUANT,
    "/api/v1/access-requests/<int:request_id>": QUANT,
    "/api/v1/access-requests/<int:request_id>/cancel": QUANT,
    "/api/v1/ops/access-requests/<int:request_id>": QUANT,
    "/api/v1/ops/access-requests/<int:request_id>/approve": QUANT,
    "/api/v1/ops/access-requests/<int:request_id>/refuse": QUANT,
    "/api/v1/ops/grants/<int:grant_id>": QUANT,
    "/api/v1/ops/grants/<int:grant_id>/revoke": QUANT,
    "/api/v1/datasets/<str:symbol>/prices": QUANT,
    "/api/v1/datasets/<str:symbol>/market-caps": QUANT,
    "/api/v1/deals/<uuid:deal_id>": SELLER,
    "/api/v1/authorized-buyers/<str:ref>": SELLER,
    "/api/v1/webhook-endpoints/<int:endpoint_id>": BUYER,
    "/api/v1/webhook-endpoints/<int:endpoint_id>/rotate-secret": BUYER,
    "/api/v1/webhook-endpoints/<int:endpoint_id>/ping": BUYER,
    "/api/v1/webhook-endpoints/<int:endpoint_id>/deliveries": BUYER,
    "/api/v1/webhook-endpoints/<int:endpoint_id>/redeliver-failed": BUYER,
    "/api/v1/webhook-deliveries/<int:delivery_id>/redeliver": BUYER,
}

_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_METHODS = ("get", "post", "put", "patch", "delete")


def _walk(resolver: URLResolver, prefix: str = "/") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


def urlconf_routes() -> dict[str, set[str]]:
    """Every route of the URLconf outside the admin, with the HTTP methods its view serves."""
    routes: dict[str, set[str]] = {}
    for route, entry in _walk(get_resolver()):
        if route.startswith("/admin/"):
            continue
        view_class = getattr(entry.callback, "view_class", None)
        assert view_class is not None, f"{route} is not a class-based view; add its methods here"
        routes[route] = {method.upper() for method in _METHODS if hasattr(view_class, method)}
    return routes


def test_every_route_and_method_has_a_row_and_every_row_a_route():
    routes = urlconf_routes()
    missing = sorted(set(routes) - set(MATRIX))
    gone = sorted(set(MATRIX) - set(routes))
    assert not missing, f"routes without an authorisation row: {missing}"
    assert not gone, f"rows for routes the URLconf no longer has: {gone}"
    for route, methods in routes.items():
        assert set(MATRIX[route]) == methods, (
            f"{route}: the view serves {sorted(methods)}, the table has {sorted(MATRIX[route])}"
        )
        has_params = bool(_PARAM.search(route))
        assert (route in OWNER_ROLE) == has_params, f"{route}: OWNER_ROLE must name the owner of every path object"
        width = 6 if has_params else 5
        for method, statuses in MATRIX[route].items():
            assert len(statuses) == width, f"{route} {method}: expected {width} statuses, one per caller"


# Which fixture object each path parameter names, where it is not the parameter's own name.
PARAM_OBJECT: dict[tuple[str, str], str] = {
    ("/api/v1/ops/accounts/<str:ref>", "ref"): "quant_ref",
    ("/api/v1/ops/accounts/<str:ref>/api-keys", "ref"): "quant_ref",
    ("/api/v1/ops/accounts/<str:ref>/api-keys/<str:prefix>/revoke", "ref"): "quant_ref",
    ("/api/v1/ops/accounts/<str:ref>/api-keys/<str:prefix>/revoke", "prefix"): "key_prefix",
    ("/api/v1/authorized-buyers/<str:ref>", "ref"): "buyer_ref",
}


def _path(route: str, world: World) -> str:
    return _PARAM.sub(lambda m: world.objects[PARAM_OBJECT.get((route, m["name"]), m["name"])], route)


def _request_spec(route: str, method: str, world: World) -> tuple[dict[str, Any] | None, str]:
    """A valid body and query string for ``method`` on ``route``."""
    in_a_month = (timezone.now() + timedelta(days=30)).isoformat()
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("/api/v1/ops/accounts", "POST"): {"ref": "matrix-new-account", "name": "New", "role": "buyer"},
        ("/api/v1/ops/accounts/<str:ref>", "PATCH"): {"name": "Renamed"},
        ("/api/v1/ops/accounts/<str:ref>/api-keys", "POST"): {"name": "rotation"},
        ("/api/v1/access-requests", "POST"): {"dataset": "BTC", "frequencies": ["1mo"], "reason": "backtest"},
        ("/api/v1/ops/access-requests/<int:request_id>/approve", "POST"): {"note": "ok"},
        ("/api/v1/ops/access-requests/<int:request_id>/refuse", "POST"): {"reason": "not now"},
        ("/api/v1/ops/grants", "POST"): {
            "account": world.client(QUANT).account.ref,
            "dataset": "ETH",
            "frequency": "1d",
        },
        ("/api/v1/ops/grants/<int:grant_id>", "PATCH"): {"expires_at": in_a_month, "reason": "trial"},
        ("/api/v1/ops/grants/<int:grant_id>/revoke", "POST"): {"reason": "chargeback"},
        ("/api/v1/deals", "POST"): deal_body(name="Another bundle"),
        ("/api/v1/deals/<uuid:deal_id>", "PATCH"): {"name": "Renamed bundle"},
        ("/api/v1/authorized-buyers", "POST"): {"buyer": world.others[BUYER].account.ref},
        ("/api/v1/webhook-endpoints", "POST"): {"url": PUBLIC_URL + "/new", "event_types": ["deal.created"]},
        ("/api/v1/webhook-endpoints/<int:endpoint_id>", "PATCH"): {"description": "renamed"},
        ("/api/v1/webhook-endpoints/<int:endpoint_id>/redeliver-failed", "POST"): {"since": "2000-01-01T00:00:00Z"},
    }
    queries = {
        (
            "/api/v1/datasets/<str:symbol>/prices",
            "GET",
        ): "?frequency=1d&start=2024-01-01T00:00:00Z&end=2024-01-08T00:00:00Z",
    }
    body = bodies.get((route, method))
    if body is None and method in ("POST", "PATCH", "PUT"):
        body = {}
    return body, queries.get((route, method), "")


class _Rollback(Exception):
    pass


def _cases() -> list[Any]:
    return [
        pytest.param(route, method, id=f"{method} {route}") for route, methods in MATRIX.items() for method in methods
    ]


@pytest.mark.parametrize(("route", "method"), _cases())
def test_authorization_matrix(world: World, route: str, method: str):
    expected = dict(zip(CALLERS, MATRIX[route][method], strict=False))
    path = _path(route, world)
    body, query = _request_spec(route, method, world)
    callers = {**world.clients}
    if OTHER in expected:
        callers[OTHER] = world.others[OWNER_ROLE[route]]

    got: dict[str, int] = {}
    details: dict[str, str] = {}
    for caller, client in callers.items():
        # Each caller sees the world as the fixture made it: its changes are rolled back.
        try:
            with transaction.atomic():
                kwargs: dict[str, Any] = {"format": "json"} if body is not None else {}
                response = getattr(client, method.lower())(path + query, body, **kwargs)
                got[caller] = response.status_code
                if response.status_code != expected[caller]:
                    details[caller] = response.content[:300].decode(errors="replace")
                elif response.status_code >= 400:
                    assert response["Content-Type"] == "application/problem+json", (caller, response.content)
                raise _Rollback
        except _Rollback:
            pass
    assert got == expected, f"{method} {path}: {details}"
