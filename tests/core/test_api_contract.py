"""The public contract third-party clients hold us to, one test per promise.

Each test names the promise it keeps; docs/api.md and docs/security.md state the same rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from accounts.models import Role
from catalog.models import Dataset
from core.models import IdempotencyRecord
from pricing.models import MarketCapSnapshot
from tests.deals.support import AUTHORIZED_BUYERS, DEALS, deal_body, raw_json
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db

PRICES = "/api/v1/datasets/BTC/prices"
MARKET_CAPS = "/api/v1/datasets/BTC/market-caps"


def _problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["status"], int)
    if code is not None:
        assert body["code"] == code
    return body


def _flat_errors(body: dict[str, Any]) -> dict[str, list[str]]:
    """``errors`` has the one shape: dotted path -> list of strings."""
    errors = body["errors"]
    assert isinstance(errors, dict) and errors
    for path, messages in errors.items():
        assert isinstance(path, str)
        assert isinstance(messages, list) and messages
        assert all(isinstance(message, str) for message in messages), errors
    return errors


@pytest.fixture
def synthetic(settings: Any) -> None:
    settings.PRICE_SOURCE = "synthetic"


@pytest.fixture
def entitled(quant_client: Any, catalog: None) -> Any:
    btc = Dataset.objects.get(symbol="BTC")
    for frequency in ("1h", "1d", "1mo"):
        GrantFactory(account=quant_client.account, dataset=btc, frequency=frequency)
    return quant_client


# --- 2. an empty PATCH changes nothing ---------------------------------------------------


def test_an_empty_patch_leaves_a_sold_deal_sold_and_unchanged(seller_client: Any) -> None:
    deal = seller_client.post(DEALS, deal_body(), format="json").json()
    sold = seller_client.patch(f"{DEALS}/{deal['id']}", {"status": "sold"}, format="json").json()
    assert sold["status"] == "sold"

    again = seller_client.patch(f"{DEALS}/{deal['id']}", {}, format="json")
    assert again.status_code == 200, again.content
    assert again.json() == sold

    renamed = seller_client.patch(f"{DEALS}/{deal['id']}", {"name": "Other"}, format="json")
    _problem(renamed, 409, "deal_sold")


def test_a_new_deal_without_status_is_available(seller_client: Any) -> None:
    body = deal_body()
    del body["status"]
    response = seller_client.post(DEALS, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "available"


def test_no_request_body_schema_carries_a_default(anon_client: Any) -> None:
    schema = anon_client.get("/api/schema/", {"format": "json"}).json()
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "default" in node:
                found.append(path)
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")

    for name, component in schema["components"]["schemas"].items():
        if name.endswith("Request"):
            walk(component, name)
    assert found == []


# --- 3. problem documents: integer status, one errors shape -------------------------------


def test_grant_not_active_problem_status_is_the_integer_http_status(ops_client: Any, quant_client: Any) -> None:
    grant = GrantFactory(account=quant_client.account)
    url = f"/api/v1/ops/grants/{grant.pk}/revoke"
    assert ops_client.post(url, {"reason": "ended"}, format="json").status_code == 200
    body = _problem(ops_client.post(url, {"reason": "again"}, format="json"), 409, "grant_not_active")
    assert body["grant_status"] == "revoked"


def test_validation_errors_have_one_shape_in_every_app(
    seller_client: Any, quant_client: Any, ops_client: Any, catalog: None
) -> None:
    deals = raw_json(
        seller_client,
        "post",
        DEALS,
        '{"name": "x", "currency": "GBP", "discount": {"type": "nope", "amount": "1"},'
        ' "items": [{"id": "a", "name": "A", "price": "1"}, {"id": "b", "name": "B", "price": "abc"}]}',
    )
    assert {"items.1.price", "discount.type"} <= set(_flat_errors(_problem(deals, 400, "validation_error")))

    access = quant_client.post(
        "/api/v1/access-requests", {"dataset": "BTC", "frequencies": ["1h", ["x"]], "reason": "r"}, format="json"
    )
    assert "frequencies.1" in _flat_errors(_problem(access, 400, "validation_error"))

    account = ops_client.post("/api/v1/ops/accounts", {"ref": "x", "name": "X", "role": "nope"}, format="json")
    assert "role" in _flat_errors(_problem(account, 400, "validation_error"))

    endpoint = seller_client.post(
        "/api/v1/webhook-endpoints", {"url": "not a url", "event_types": ["nope"]}, format="json"
    )
    errors = _flat_errors(_problem(endpoint, 400, "validation_error"))
    assert "url" in errors

    whole = raw_json(seller_client, "post", DEALS, "[1, 2]")
    assert "non_field_errors" in _flat_errors(_problem(whole, 400, "validation_error"))


# --- 4. bad input never gets a 5xx -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/datasets/BT%00C",
        "/api/v1/datasets?page=%00",
        "/api/v1/ops/accounts/a%00b",
        "/api/v1/deals?seller=%00",
        "/api/v1/nowhere%00",
        "/admin/%00",
    ],
)
def test_a_nul_byte_anywhere_in_the_url_is_a_400(anon_client: Any, ops_client: Any, url: str) -> None:
    _problem(anon_client.get(url), 400, "invalid_url")
    _problem(ops_client.get(url), 400, "invalid_url")


@pytest.mark.parametrize("number", ["1e999999999", "-1e999999999", "1e-999999999", "1E+999999999", "9" * 5000])
def test_huge_or_tiny_numbers_in_a_body_are_a_400(seller_client: Any, number: str) -> None:
    for field in ("price", "total_price", "discount"):
        items = '[{"id": "a", "name": "A", "price": ' + (number if field == "price" else '"1"') + "}]"
        total = number if field == "total_price" else "null"
        discount = '{"type": "flat", "amount": ' + number + "}" if field == "discount" else "null"
        body = f'{{"name": "x", "currency": "GBP", "items": {items}, "total_price": {total}, "discount": {discount}}}'
        response = raw_json(seller_client, "post", DEALS, body)
        assert response.status_code == 400, (field, number, response.content)
        assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("number", ["1e999999999", "1e-999999999", "NaN", "Infinity"])
def test_huge_or_tiny_numbers_in_a_query_are_a_400(seller_client: Any, number: str) -> None:
    _problem(seller_client.get(DEALS, {"min_price": number}), 400, "validation_error")


@pytest.mark.parametrize("idempotency_key", [None, "big-1"])
def test_a_body_over_the_limit_is_a_413_problem(ops_client: Any, settings: Any, idempotency_key: str | None) -> None:
    settings.API_MAX_BODY_BYTES = 1000
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    body = '{"ref": "big", "role": "quant", "name": "' + "x" * 2000 + '"}'
    response = ops_client.generic("POST", "/api/v1/ops/accounts", body, content_type="application/json", **headers)
    _problem(response, 413, "payload_too_large")
    assert IdempotencyRecord.objects.count() == 0


# --- 5. instants, query parameters, page sizes, caching, 503, CSV, auth scheme ------------


def test_a_date_alone_or_a_time_without_offset_means_utc_on_prices(entitled: Any, synthetic: None) -> None:
    query = {"frequency": "1d", "end": "2023-01-05T00:00:00Z"}
    explicit = entitled.get(PRICES, {**query, "start": "2023-01-01T00:00:00Z"})
    assert explicit.status_code == 200, explicit.content
    assert len(explicit.json()["results"]) == 4
    for start in ("2023-01-01", "2023-01-01T00:00:00", "2023-01-01T01:00:00+01:00"):
        response = entitled.get(PRICES, {**query, "start": start})
        assert response.status_code == 200, response.content
        assert response.json()["results"] == explicit.json()["results"]
        assert response.json()["start"] == "2023-01-01T00:00:00Z"


def test_a_date_alone_or_a_time_without_offset_means_utc_on_market_caps(entitled: Any) -> None:
    btc = Dataset.objects.get(symbol="BTC")
    for day in range(1, 5):
        MarketCapSnapshot.objects.create(
            dataset=btc,
            date=datetime(2025, 1, day, tzinfo=UTC).date(),
            market_cap_usd=1,
            price_usd=1,
            supply=1,
            source="synthetic",
            source_timestamp=datetime(2025, 1, day, tzinfo=UTC),
        )
    for start, end in (("2025-01-02", "2025-01-04"), ("2025-01-02T00:00:00", "2025-01-03T12:00:00Z")):
        response = entitled.get(MARKET_CAPS, {"start": start, "end": end})
        assert response.status_code == 200, response.content
        assert [row["date"] for row in response.json()["results"]] == ["2025-01-02", "2025-01-03"]


def test_a_date_alone_or_a_time_without_offset_means_utc_in_bodies_and_filters(
    ops_client: Any, quant_client: Any, seller_client: Any
) -> None:
    grant = GrantFactory(account=quant_client.account)
    future = (datetime.now(UTC) + timedelta(days=400)).date()
    for value in (future.isoformat(), f"{future.isoformat()}T00:00:00"):
        response = ops_client.patch(f"/api/v1/ops/grants/{grant.pk}", {"expires_at": value}, format="json")
        assert response.status_code == 200, response.content
        assert datetime.fromisoformat(response.json()["expires_at"]) == datetime(
            future.year, future.month, future.day, tzinfo=UTC
        )

    deal = seller_client.post(DEALS, deal_body(), format="json").json()
    updated = datetime.fromisoformat(deal["updated_at"])
    before = (updated - timedelta(seconds=1)).astimezone(UTC).replace(tzinfo=None).isoformat()
    after = (updated + timedelta(seconds=1)).astimezone(UTC).replace(tzinfo=None).isoformat()
    assert [d["id"] for d in seller_client.get(DEALS, {"updated_after": before}).json()["results"]] == [deal["id"]]
    assert seller_client.get(DEALS, {"updated_after": after}).json()["results"] == []


@pytest.mark.parametrize(
    ("role", "url", "params", "unknown"),
    [
        ("quant", PRICES, {"frequency": "1d", "from": "2024-01-01", "to": "2024-02-01"}, {"from", "to"}),
        ("quant", MARKET_CAPS, {"format": "csv"}, {"format"}),
        (None, "/api/v1/datasets", {"sort": "name"}, {"sort"}),
        ("seller", DEALS, {"state": "sold"}, {"state"}),
        ("quant", "/api/v1/events", {"since": "x"}, {"since"}),
        ("ops", "/api/v1/ops/grants", {"acount": "x"}, {"acount"}),
        ("quant", "/api/v1/me", {"verbose": "1"}, {"verbose"}),
    ],
)
def test_unknown_query_parameters_are_a_400_naming_them(
    make_client: Any, anon_client: Any, entitled: Any, role: str | None, url: str, params: dict, unknown: set
) -> None:
    client = entitled if role == "quant" else (make_client(role) if role else anon_client)
    body = _problem(client.get(url, params), 400, "validation_error")
    assert set(_flat_errors(body)) == unknown


@pytest.mark.parametrize("value", ["0", "-1", "abc", "", "1.5", "1001", "99999999999999999999"])
@pytest.mark.parametrize(
    ("role", "url"),
    [
        (None, "/api/v1/datasets"),
        ("seller", DEALS),
        ("quant", "/api/v1/access-requests"),
        ("quant", "/api/v1/entitlements"),
        ("quant", "/api/v1/events"),
        ("ops", "/api/v1/ops/grants"),
        ("ops", "/api/v1/ops/accounts"),
        ("seller", AUTHORIZED_BUYERS),
        ("seller", "/api/v1/webhook-endpoints"),
        ("quant", MARKET_CAPS),
    ],
)
def test_one_page_size_rule_on_every_list(
    make_client: Any, anon_client: Any, entitled: Any, role: str | None, url: str, value: str
) -> None:
    client = entitled if role == "quant" else (make_client(role) if role else anon_client)
    assert client.get(url, {"page_size": "1"}).status_code == 200
    body = _problem(client.get(url, {"page_size": value}), 400, "validation_error")
    assert list(_flat_errors(body)) == ["page_size"]


@pytest.mark.parametrize("value", ["0", "abc", "", "10001"])
def test_one_page_size_rule_on_prices(entitled: Any, synthetic: None, value: str) -> None:
    assert entitled.get(PRICES, {"frequency": "1d", "page_size": "1"}).status_code == 200
    body = _problem(entitled.get(PRICES, {"frequency": "1d", "page_size": value}), 400, "validation_error")
    assert list(_flat_errors(body)) == ["page_size"]


def test_a_weak_if_none_match_compares_weakly(seller_client: Any) -> None:
    created = seller_client.post(DEALS, deal_body(), format="json")
    etag = created["ETag"]
    url = f"{DEALS}/{created.json()['id']}"
    for header in (etag, f"W/{etag}", f'"other", W/{etag}', "*"):
        response = seller_client.get(url, HTTP_IF_NONE_MATCH=header)
        assert response.status_code == 304, header
        assert response["ETag"] == etag
    assert seller_client.get(url, HTTP_IF_NONE_MATCH='W/"other"').status_code == 200


def test_503_answers_carry_retry_after(anon_client: Any, settings: Any, entitled: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    ready = anon_client.get("/readyz")
    _problem(ready, 503, "dependency_unavailable")
    assert int(ready["Retry-After"]) > 0

    settings.PRICE_SOURCE = "coincap"
    settings.COINCAP_BASE_URL = "http://127.0.0.1:1/v3"
    settings.COINCAP_MAX_RETRIES = 0
    prices = entitled.get(PRICES, {"frequency": "1d", "start": "2020-01-01", "end": "2020-01-03"})
    _problem(prices, 503, "price_source_unavailable")
    assert int(prices["Retry-After"]) > 0


def test_a_csv_next_link_stays_csv_when_csv_was_asked_for_by_accept(entitled: Any, synthetic: None) -> None:
    query = {"frequency": "1d", "start": "2023-01-01", "end": "2023-01-10", "page_size": "3"}
    response = entitled.get(PRICES, query, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    link = response["Link"]
    assert "format=csv" in link
    next_url = link[link.index("<") + 1 : link.index(">")]
    following = entitled.get(next_url)
    assert following["Content-Type"].startswith("text/csv")
    assert following.content.decode().splitlines()[0] == "timestamp,price_usd"


@pytest.mark.parametrize("scheme", ["Bearer {key}", "{key}", "Token {key}", "Basic Zm9vOmJhcg=="])
def test_a_wrong_auth_scheme_gets_a_401_naming_the_api_key_scheme(quant_client: Any, scheme: str) -> None:
    quant_client.credentials(HTTP_AUTHORIZATION=scheme.format(key=quant_client.key))
    response = quant_client.get("/api/v1/entitlements")
    body = _problem(response, 401, "authentication_failed")
    assert "Authorization: Api-Key <key>" in body["detail"]
    assert response["WWW-Authenticate"] == "Api-Key"


def test_no_credentials_gets_a_401_naming_the_api_key_scheme(anon_client: Any) -> None:
    body = _problem(anon_client.get("/api/v1/entitlements"), 401, "not_authenticated")
    assert "Authorization: Api-Key <key>" in body["detail"]


# --- 6. abuse --------------------------------------------------------------------------


def test_idempotency_records_are_kept_only_for_key_holders_on_routes_that_exist(
    anon_client: Any, ops_client: Any
) -> None:
    key = {"HTTP_IDEMPOTENCY_KEY": "k-1"}
    body = {"ref": "new-one", "name": "N", "role": "quant"}
    assert anon_client.post("/api/v1/nowhere", body, format="json", **key).status_code == 404
    assert anon_client.post("/api/v1/ops/accounts", body, format="json", **key).status_code == 401
    assert ops_client.post("/api/v1/nowhere", body, format="json", **key).status_code == 404
    anon_client.credentials(HTTP_AUTHORIZATION="Api-Key nope.nope")
    assert anon_client.post("/api/v1/ops/accounts", body, format="json", **key).status_code == 401
    assert IdempotencyRecord.objects.count() == 0

    assert ops_client.post("/api/v1/ops/accounts", body, format="json", **key).status_code == 201
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.parametrize(
    ("path", "credentials", "status"),
    [
        ("/api/v1/entitlements", "Api-Key nope.nope", 401),
        ("/api/v1/entitlements", "Bearer x", 401),
        ("/api/v1/no-such-thing", None, 404),
        ("/wp-login.php", None, 404),
    ],
)
def test_failed_auth_and_404_storms_are_rate_limited_per_client_address(
    anon_client: Any, quant_client: Any, settings: Any, path: str, credentials: str | None, status: int
) -> None:
    settings.API_FAILURE_RATE_LIMIT = "5/min"
    if credentials:
        anon_client.credentials(HTTP_AUTHORIZATION=credentials)
    prober = {"REMOTE_ADDR": "203.0.113.9"}
    for _ in range(5):
        assert anon_client.get(path, **prober).status_code == status
    refused = anon_client.get(path, **prober)
    body = _problem(refused, 429, "throttled")
    assert int(refused["Retry-After"]) == 60
    assert body["retry_after"] == 60
    # The limit holds for that address, whatever it asks next ...
    assert quant_client.get("/api/v1/entitlements", **prober).status_code == 429
    # ... and not for anyone else.
    assert quant_client.get("/api/v1/entitlements", REMOTE_ADDR="203.0.113.10").status_code == 200


def test_successful_requests_do_not_count_towards_the_failure_limit(quant_client: Any, settings: Any) -> None:
    settings.API_FAILURE_RATE_LIMIT = "3/min"
    for _ in range(10):
        assert quant_client.get("/api/v1/entitlements").status_code == 200


def test_authorised_buyers_answer_is_the_same_for_an_unknown_ref_and_another_role(
    make_client: Any, seller_client: Any
) -> None:
    answers = []
    for ref in (make_client(Role.QUANT).account.ref, make_client(Role.OPS).account.ref, "no-such-ref"):
        response = seller_client.post(AUTHORIZED_BUYERS, {"buyer": ref}, format="json")
        body = _problem(response, 400, "validation_error")
        answers.append((body["detail"], body["errors"]))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][1] == {"buyer": ["No buyer account has this ref."]}


def test_problem_members_cannot_be_overridden() -> None:
    from core.errors import problem

    with pytest.raises(ValueError, match="reserved"):
        problem(409, "conflict", "x", status="revoked")
    assert problem(409, "conflict", "x", grant_status="revoked")["status"] == 409


@pytest.mark.parametrize("number", ["1e999999999", "1e-999999999"])
def test_huge_or_tiny_numbers_in_other_bodies_are_a_400(
    ops_client: Any, quant_client: Any, seller_client: Any, catalog: None, number: str
) -> None:
    grant = GrantFactory(account=quant_client.account)
    ref = quant_client.account.ref
    cases = [
        (
            ops_client,
            "post",
            "/api/v1/ops/grants",
            f'{{"account": "{ref}", "dataset": "ETH", "frequency": "1d", "trial_days": {number}}}',
        ),
        (ops_client, "patch", f"/api/v1/ops/grants/{grant.pk}", f'{{"expires_at": {number}}}'),
        (quant_client, "post", "/api/v1/access-requests", f'{{"dataset": "BTC", "frequencies": {number}}}'),
        (seller_client, "post", "/api/v1/webhook-endpoints", f'{{"url": {number}}}'),
        (seller_client, "post", AUTHORIZED_BUYERS, f'{{"buyer": {number}}}'),
    ]
    for client, method, url, body in cases:
        response = raw_json(client, method, url, body)
        assert response.status_code == 400, (url, response.content)
        assert response["Content-Type"] == "application/problem+json"
