"""The hot read endpoints answer byte-for-byte what they answered when these goldens were
recorded (body, status, headers), on fixed data, with an exact number of queries each;
and the OpenAPI schema is unchanged.

A response changed on purpose: re-record with ``UPDATE_GOLDENS=1 make test
PYTEST_ARGS=tests/core/test_read_contract.py`` and review the diff of ``tests/golden/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts import services as account_services
from accounts.models import Role
from accounts.selectors import api_key_cache_forget
from catalog.models import Dataset
from core.hotpath import HotReads
from deals.models import BuyerAuthorization, Deal, DealItem
from deals.services import final_price_compute
from demo.seed import catalog_seed
from entitlements.models import Grant
from pricing.models import MarketCapSnapshot, PriceCoverage, PricePoint, PriceSyncState
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "reads"
UPDATE = os.environ.get("UPDATE_GOLDENS") == "1"
# Bodies above this size are compared by their SHA-256 (still byte-for-byte), not kept whole.
INLINE_LIMIT = 64 * 1024
# Headers the test client never sets the same way twice (none today); everything else is compared.
UNSTABLE_HEADERS: frozenset[str] = frozenset()

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CURRENCIES = ["GBP", "JPY", "USD", "BHD", "EUR"]
NAMES = ["Summer bundle", "Café crème set", "日本の箱", 'Quote "and" back\\slash', "Line\u2028separator"]


def _deal_uuid(index: int) -> uuid.UUID:
    return uuid.UUID(int=0xD0000000_0000_4000_8000_000000000000 + index)


def _price(index: int) -> Decimal:
    # Varied exact decimals: trailing zeros, many digits, whole numbers.
    return (
        Decimal(40000 + (index * 37) % 5000) + Decimal(index % 1000) / Decimal(1000) + Decimal("0.000001") * (index % 7)
    )


def _seed() -> dict[str, str]:
    """Fixed data for every case; returns the API keys by role (keys vary, responses do not show them)."""
    catalog_seed()
    btc = Dataset.objects.get(symbol="BTC")
    eth = Dataset.objects.get(symbol="ETH")

    for dataset, base in ((btc, Decimal("1800000000000.5")), (eth, Decimal("400000000000"))):
        for day in range(3):
            MarketCapSnapshot.objects.create(
                dataset=dataset,
                date=date(2025, 12, 29) + timedelta(days=day),
                market_cap_usd=base + day,
                price_usd=Decimal("93429.230000000000000000") + day,
                supply=Decimal("19800000.123"),
                max_supply=Decimal("21000000") if dataset == btc else None,
                volume_usd_24h=Decimal("12345678.9") if day else None,
                change_percent_24h=Decimal("-1.25") if day else None,
                rank=1 if dataset == btc else 2,
                source="coincap" if day else "synthetic",
                estimated=day == 0,
                source_timestamp=datetime(2025, 12, 29, 20, 0, tzinfo=UTC) + timedelta(days=day),
                created_at=datetime(2025, 12, 29, 20, 1, tzinfo=UTC) + timedelta(days=day),
                updated_at=datetime(2025, 12, 29, 20, 2, tzinfo=UTC) + timedelta(days=day),
            )

    PricePoint.objects.bulk_create(
        PricePoint(
            dataset=btc,
            frequency="1h",
            timestamp=YEAR_START + timedelta(hours=i),
            price_usd=_price(i),
            source="synthetic",
        )
        for i in range(int((YEAR_END - YEAR_START) / timedelta(hours=1)))
    )
    PriceCoverage.objects.create(dataset=btc, frequency="1h", start=YEAR_START, end=YEAR_END)
    PriceSyncState.objects.create(
        dataset=btc,
        frequency="1h",
        source="synthetic",
        last_point_at=YEAR_END - timedelta(hours=1),
        last_success_at=datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
        last_attempt_at=datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
        points_stored=8760,
    )

    keys: dict[str, str] = {}
    quant = AccountFactory(ref="golden-quant", name="Golden Quant", role=Role.QUANT)
    _, keys["quant"] = account_services.api_key_create(account=quant, name="golden")
    for pk, dataset, frequency, expires in (
        (910001, btc, "1h", None),
        (910002, btc, "1d", datetime(2100, 1, 1, tzinfo=UTC)),
        (910003, eth, "1d", None),
    ):
        Grant.objects.create(
            pk=pk,
            account=quant,
            dataset=dataset,
            frequency=frequency,
            starts_at=datetime(2025, 1, 1, tzinfo=UTC),
            expires_at=expires,
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
        )

    buyer = AccountFactory(ref="golden-buyer", name="Golden Buyer", role=Role.BUYER)
    _, keys["buyer"] = account_services.api_key_create(account=buyer, name="golden")
    sellers = [AccountFactory(ref=f"golden-seller-{n}", name=f"Golden Seller {n}", role=Role.SELLER) for n in "ab"]
    other = AccountFactory(ref="golden-seller-unseen", name="Not authorising", role=Role.SELLER)
    for seller in sellers:
        BuyerAuthorization.objects.create(seller=seller, buyer=buyer, created_at=T0)
    for index in range(215):
        seller = other if index % 43 == 0 else sellers[index % 2]
        currency = CURRENCIES[index % len(CURRENCIES)]
        items = [
            (f"sku-{index}-{n}", f"{NAMES[(index + n) % len(NAMES)]} #{n}", Decimal(10 + index % 17) + Decimal(n) / 4)
            for n in range(index % 4)
        ]
        total = sum((price for _, _, price in items), Decimal(0)) or Decimal("99.5")
        discount_type, amount = (
            ("", None),
            ("flat", Decimal("1.5")),
            ("percentage", Decimal("12.5")),
        )[index % 3]
        timestamp = T0 + timedelta(minutes=index * 7 // 2)  # pairs share an updated_at: ties broken by id
        deal = Deal.objects.create(
            public_id=_deal_uuid(index),
            seller=seller,
            name=NAMES[index % len(NAMES)],
            currency=currency,
            total_price=total,
            discount_type=discount_type,
            discount_amount=amount,
            final_price=final_price_compute(
                total=total, discount_type=discount_type, discount_amount=amount, currency=currency
            ),
            status="sold" if index % 5 == 0 else "available",
            version=1 + index % 4,
            created_at=timestamp - timedelta(days=1, microseconds=index),
            updated_at=timestamp,
        )
        DealItem.objects.bulk_create(
            DealItem(deal=deal, position=n, ref=ref, name=name, price=price)
            for n, (ref, name, price) in enumerate(items)
        )
    return keys


@dataclass
class Case:
    name: str
    path: str
    role: str | None = None  # whose API key; None is anonymous
    queries: int = 0
    headers: dict[str, str] = field(default_factory=dict)


DEAL = f"/api/v1/deals/{_deal_uuid(7)}"
YEAR = "frequency=1h&start=2025-01-01T00:00:00Z&end=2026-01-01T00:00:00Z&page_size=10000"
CASES = [
    Case("datasets_list", "/api/v1/datasets", queries=3),
    Case("dataset_detail", "/api/v1/datasets/btc", queries=2),
    Case("deals_list_200", "/api/v1/deals?page_size=200", "buyer", queries=2),
    Case("deals_list_20", "/api/v1/deals?page_size=20", "buyer", queries=2),
    Case("deals_list_seller", "/api/v1/deals?page_size=20&ordering=updated_at", "seller", queries=2),
    Case("deal_detail", DEAL, "buyer", queries=2),
    Case("deal_not_modified", DEAL, "buyer", queries=1, headers={"If-None-Match": '"{etag}"'}),
    Case("deal_not_visible", f"/api/v1/deals/{_deal_uuid(0)}", "buyer", queries=1),
    Case("entitlements", "/api/v1/entitlements", "quant", queries=1),
    Case("prices_year_json", f"/api/v1/datasets/BTC/prices?{YEAR}", "quant", queries=5),
    Case("prices_year_csv", f"/api/v1/datasets/BTC/prices?{YEAR}&format=csv", "quant", queries=5),
    Case("prices_year_csv_accept", f"/api/v1/datasets/BTC/prices?{YEAR}", "quant", 5, {"Accept": "text/csv"}),
    Case(
        "prices_page",
        "/api/v1/datasets/BTC/prices?frequency=1h&start=2025-03-01T00:00:00Z&end=2025-03-02T00:00:00Z&page_size=5",
        "quant",
        queries=5,
    ),
    Case("prices_not_entitled", "/api/v1/datasets/BTC/prices?frequency=1mo", "quant", queries=3),
    Case("market_caps", "/api/v1/datasets/BTC/market-caps", "quant", queries=4),
    Case("deals_no_key", "/api/v1/deals", queries=0),
    Case("deals_bad_key", "/api/v1/deals", "bogus", queries=1),
    Case("deals_wrong_role", "/api/v1/deals", "quant", queries=0),
]


def _record(response: Any) -> dict[str, Any]:
    return _record_of(response.status_code, response.items(), response.content)


def _record_of(status: int, headers: Any, body: bytes) -> dict[str, Any]:
    record: dict[str, Any] = {
        "status": status,
        "headers": {name: value for name, value in sorted(headers) if name not in UNSTABLE_HEADERS},
        "body_bytes": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    if len(body) <= INLINE_LIMIT:
        record["body"] = body.decode()
    else:
        record["body_head"] = body[:2048].decode(errors="replace")
        record["body_tail"] = body[-1024:].decode(errors="replace")
    return record


def _check(name: str, actual: dict[str, Any]) -> None:
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        return
    expected = json.loads(path.read_text())
    assert actual == expected, f"{name}: the response differs from {path.relative_to(GOLDEN.parent.parent.parent)}"


@pytest.fixture(scope="module")
def golden_keys(django_db_setup: None, django_db_blocker: Any) -> Any:
    """The fixed data, written once for the module and removed after it."""
    from django.db import transaction

    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield _seed()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _headers(case: Case, keys: dict[str, str]) -> dict[str, str]:
    headers = {name: value.format(etag=f"{_deal_uuid(7)}.{1 + 7 % 4}") for name, value in case.headers.items()}
    if case.role == "bogus":
        headers["Authorization"] = "Api-Key AbCdEfGh.not-a-real-key-0123456789"
    elif case.role is not None:
        headers["Authorization"] = f"Api-Key {keys[case.role]}"
    return headers


def _request(case: Case, keys: dict[str, str]) -> tuple[Any, int]:
    headers = _headers(case, keys)
    client = Client()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(case.path, headers=headers)
    return response, len(queries)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_read_answers_byte_for_byte(case: Case, golden_keys: dict[str, str], settings: Any) -> None:
    keys = dict(golden_keys)
    if case.role == "seller":
        seller = AccountFactory(ref="golden-seller-a")
        _, keys["seller"] = account_services.api_key_create(account=seller, name="golden")
    response, _ = _request(case, keys)
    _check(case.name, _record(response))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_read_query_count_is_pinned(case: Case, golden_keys: dict[str, str], settings: Any) -> None:
    """Steady state: the caller's key already read by this process and its last use just written."""
    settings.API_KEY_CACHE_TTL = timedelta(hours=1)  # no reload between the two requests, however slow the machine
    api_key_cache_forget()
    keys = dict(golden_keys)
    if case.role == "seller":
        seller = AccountFactory(ref="golden-seller-a")
        _, keys["seller"] = account_services.api_key_create(account=seller, name="golden")
    _request(case, keys)
    _, count = _request(case, keys)
    assert count == case.queries, f"{case.name}: {count} queries, pinned at {case.queries}"


def test_openapi_schema_unchanged(golden_keys: dict[str, str]) -> None:
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    _check("openapi_schema", _record(response))


# The fast path in front of Django (core.hotpath) answers these cases itself; every other case
# falls through to Django. Either way the answer is the golden one. (The datasets list is
# answered from the catalog answer a process keeps, which nothing read inside a transaction
# becomes: tests/core/test_hotpath.py checks it on committed data.)
HOT_QUERIES = {"deals_list_200": 2, "deals_list_20": 2, "deal_detail": 2, "entitlements": 1}


def _wsgi(app: Any, case: Case, keys: dict[str, str]) -> dict[str, Any]:
    """The case sent as a WSGI request straight to ``app``, recorded as ``_record`` records."""
    headers = _headers(case, keys)
    environ = RequestFactory().get(case.path, headers={"Host": "testserver", **headers}).environ
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = int(status.split()[0]), response_headers

    body = b"".join(app(environ, start_response))
    return _record_of(answer["status"], answer["headers"], body)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_served_application_answers_the_golden_bytes(
    case: Case, golden_keys: dict[str, str], settings: Any, connection_kept_between_requests: None
) -> None:
    """Through ``config.wsgi.application``, as gunicorn serves it: the fast path answers its
    cases with Django's bytes, headers and status, in an exact number of queries; every other
    case reaches Django."""
    from config.wsgi import application, django_application

    settings.API_KEY_CACHE_TTL = timedelta(hours=1)
    keys = dict(golden_keys)
    if case.role == "seller":
        seller = AccountFactory(ref="golden-seller-a")
        _, keys["seller"] = account_services.api_key_create(account=seller, name="golden")
    reached_django = []

    def django_app(environ: dict[str, Any], start_response: Any) -> Any:
        reached_django.append(environ["PATH_INFO"])
        return django_application(environ, start_response)

    served = HotReads(django_app, application.routes, authenticate=application.authenticate)
    _wsgi(served, case, keys)  # the key's last use written, the catalog answer kept
    reached_django.clear()
    with CaptureQueriesContext(connection) as queries:
        record = _wsgi(served, case, keys)
    _check(case.name, record)
    if case.name in HOT_QUERIES:
        assert not reached_django, f"{case.name} was not answered by the fast path"
        assert len(queries) == HOT_QUERIES[case.name]
    else:
        assert reached_django, f"{case.name} should have been left to Django"
