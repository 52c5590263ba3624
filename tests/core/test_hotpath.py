"""The fast path in front of Django (core.hotpath), driven as gunicorn drives the application:
it answers what Django would answer, header for header, and leaves to Django every request it
cannot answer the same way, with the rate limits and the failure limit counted once.

``tests/core/test_read_contract.py`` checks its answers against the recorded goldens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import RequestFactory

from accounts import services as account_services
from accounts.models import AccountAPIKey, Role
from catalog.models import Dataset
from core.hotpath import HotReads
from core.pagination import CursorPagination, first_page_next_link
from deals.models import BuyerAuthorization, Deal
from entitlements.models import Grant
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    by_django: bool


@pytest.fixture
def serve(connection_kept_between_requests: None) -> Callable[..., Answer]:
    """Send a request to the served application (``config.wsgi.application``) and tell whether
    Django answered it."""
    from django.core.handlers.wsgi import WSGIHandler

    from config.wsgi import application

    def _serve(
        path: str, key: str | None = None, method: str = "GET", through_django: bool = False, **environ: Any
    ) -> Answer:
        reached: list[bool] = []
        django_application = WSGIHandler()  # its middleware reads the settings as the test left them

        def django_app(env: dict[str, Any], start_response: Any) -> Any:
            reached.append(True)
            return django_application(env, start_response)

        served = HotReads(django_app, application.routes, authenticate=application.authenticate)
        headers = {"Host": "testserver", **({"Authorization": f"Api-Key {key}"} if key else {})}
        request = RequestFactory().generic(method, path, headers=headers)
        env = {**request.environ, "REMOTE_ADDR": "10.20.30.40", **environ}
        started: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started["status"], started["headers"] = int(status.split()[0]), response_headers

        body = b"".join((django_app if through_django else served)(env, start_response))
        return Answer(started["status"], started["headers"], body, bool(reached))

    return _serve


@pytest.fixture
def quant_key(catalog: None) -> str:
    quant = AccountFactory(role=Role.QUANT)
    btc = Dataset.objects.get(symbol="BTC")
    for frequency in ("1h", "1d"):
        Grant.objects.create(
            account=quant, dataset=btc, frequency=frequency, starts_at=datetime(2025, 1, 1, tzinfo=UTC)
        )
    _, key = account_services.api_key_create(account=quant, name="test")
    return key


def _warm(serve: Callable[..., Answer], path: str, key: str | None = None) -> Answer:
    """First request: Django writes the key's last use; after it the fast path can answer."""
    first = serve(path, key)
    assert first.by_django
    return first


def test_the_fast_answer_is_djangos_header_for_header(serve: Callable[..., Answer], quant_key: str) -> None:
    django_answer = _warm(serve, "/api/v1/entitlements?page_size=1", quant_key)
    fast = serve("/api/v1/entitlements?page_size=1", quant_key)
    assert not fast.by_django
    assert (fast.status, fast.headers, fast.body) == (django_answer.status, django_answer.headers, django_answer.body)
    assert b'"next":"http://testserver/api/v1/entitlements?cursor=' in fast.body
    for accept in ("application/json", "*/*"):
        negotiated = serve("/api/v1/entitlements?page_size=1", quant_key, HTTP_ACCEPT=accept)
        assert (negotiated.by_django, negotiated.body) == (False, fast.body)


def test_behind_a_tls_proxy_the_fast_answer_carries_djangos_hsts_and_https_links(
    serve: Callable[..., Answer], quant_key: str, settings: Any
) -> None:
    settings.SECURE_HSTS_SECONDS = 3600
    https = {"HTTP_X_FORWARDED_PROTO": "https"}
    _warm(serve, "/api/v1/entitlements?page_size=1", quant_key)
    django_answer = serve("/api/v1/entitlements?page_size=1", quant_key, through_django=True, **https)
    fast = serve("/api/v1/entitlements?page_size=1", quant_key, **https)
    assert not fast.by_django
    assert ("Strict-Transport-Security", "max-age=3600") in fast.headers
    assert fast.headers == django_answer.headers and fast.body == django_answer.body
    assert b'"next":"https://testserver/' in fast.body


@pytest.mark.django_db(transaction=True)
def test_the_public_catalog_is_answered_from_the_kept_answer(serve: Callable[..., Answer], catalog: None) -> None:
    django_answer = _warm(serve, "/api/v1/datasets")  # Django builds and keeps it
    fast = serve("/api/v1/datasets")
    assert not fast.by_django
    assert (fast.status, fast.headers, fast.body) == (django_answer.status, django_answer.headers, django_answer.body)
    assert dict(fast.headers)["Cache-Control"].startswith("public")


@pytest.mark.parametrize(
    ("path", "environ", "status"),
    [
        ("/api/v1/entitlements?page_size=0", {}, 400),  # Django's 400 naming page_size
        ("/api/v1/entitlements?page_size=1&page_size=2", {}, 200),
        ("/api/v1/entitlements?unknown=1", {}, 400),
        ("/api/v1/entitlements?cursor=bad", {}, 400),
        ("/api/v1/entitlements?page_size=%001", {}, 400),
        ("/api/v1/entitlements", {"HTTP_IF_NONE_MATCH": '"x"'}, 200),
        ("/api/v1/entitlements", {"CONTENT_LENGTH": "2", "wsgi.input": None}, 200),
        ("/api/v1/entitlements", {"HTTP_HOST": "evil.example"}, 400),
        ("/api/v1/entitlements", {"HTTP_ACCEPT": "application/xml"}, 406),
        ("/api/v1/entitlements", {"HTTP_ACCEPT": "application/json; indent=4"}, 200),
        ("/api/v1/entitlements", {"SCRIPT_NAME": "/backoffice"}, 200),
        ("/api/v1/entitlements/", {}, 404),
        ("/api/v1/deals", {}, 403),  # a quant: not a role the deals list admits
    ],
)
def test_what_the_fast_path_cannot_answer_the_same_way_goes_to_django(
    serve: Callable[..., Answer], quant_key: str, path: str, environ: dict[str, Any], status: int
) -> None:
    import io

    if environ.get("CONTENT_LENGTH"):
        environ = {**environ, "wsgi.input": io.BytesIO(b"{}")}
    _warm(serve, "/api/v1/entitlements", quant_key)
    answer = serve(path, quant_key, **environ)
    assert answer.by_django
    assert answer.status == status


def test_other_methods_and_missing_or_revoked_keys_go_to_django(serve: Callable[..., Answer], quant_key: str) -> None:
    _warm(serve, "/api/v1/entitlements", quant_key)
    assert serve("/api/v1/entitlements", quant_key, method="HEAD").by_django
    assert serve("/api/v1/entitlements", quant_key, method="OPTIONS").by_django
    missing = serve("/api/v1/entitlements")
    assert (missing.by_django, missing.status) == (True, 401)
    prefix = quant_key.partition(".")[0]
    api_key = AccountAPIKey.objects.get(prefix=prefix)
    account_services.api_key_revoke(api_key=api_key, actor=api_key.account)
    revoked = serve("/api/v1/entitlements", quant_key)
    assert (revoked.by_django, revoked.status) == (True, 401)


def test_the_rate_limit_counts_each_request_once_and_django_answers_the_429(
    serve: Callable[..., Answer], buyer_client: Any, settings: Any
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "4/min", "anon": None}}
    seller = AccountFactory(role=Role.SELLER)
    BuyerAuthorization.objects.create(seller=seller, buyer=buyer_client.account)
    deal = Deal.objects.create(seller=seller, name="d", currency="GBP", total_price=1, final_price=1)
    key = buyer_client.key
    assert serve(f"/api/v1/deals/{deal.public_id}", key).by_django  # 1: the last use written
    assert not serve(f"/api/v1/deals/{deal.public_id}", key).by_django  # 2
    unseen = serve("/api/v1/deals/00000000-0000-4000-8000-000000000000", key)  # 3: Django's 404, counted once
    assert (unseen.by_django, unseen.status) == (True, 404)
    assert not serve(f"/api/v1/deals/{deal.public_id}", key).by_django  # 4
    refused = serve(f"/api/v1/deals/{deal.public_id}", key)
    assert (refused.by_django, refused.status) == (True, 429)
    assert dict(refused.headers)["Retry-After"]


def test_an_address_past_the_failure_limit_gets_djangos_429_on_reads_it_could_make(
    serve: Callable[..., Answer], quant_key: str, settings: Any
) -> None:
    settings.API_FAILURE_RATE_LIMIT = "2/min"
    _warm(serve, "/api/v1/entitlements", quant_key)
    for _ in range(2):
        assert serve("/api/v1/entitlements", "AbCdEfGh.not-a-key").status == 401
    refused = serve("/api/v1/entitlements", quant_key)
    assert (refused.by_django, refused.status) == (True, 429)
    elsewhere = serve("/api/v1/entitlements", quant_key, REMOTE_ADDR="10.20.30.41")
    assert (elsewhere.by_django, elsewhere.status) == (False, 200)


def test_with_the_cache_unreachable_django_answers_unthrottled(
    serve: Callable[..., Answer], quant_key: str, settings: Any
) -> None:
    _warm(serve, "/api/v1/entitlements", quant_key)
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"}}
    answer = serve("/api/v1/entitlements", quant_key)
    assert (answer.by_django, answer.status) == (True, 200)


@pytest.mark.parametrize("tied", [0, 1, 3, 4])
def test_the_first_page_next_link_is_the_one_drf_gives(rf: Any, tied: int) -> None:
    """Rows whose ordering field ties across the page's end get DRF's offset cursor."""
    base = datetime(2025, 1, 1, tzinfo=UTC)
    times = [base - timedelta(minutes=n) for n in range(4 - tied)] + [base - timedelta(minutes=10)] * (tied + 1)
    assert len(times) == 5
    rows = [{"id": 10 - n, "updated_at": at} for n, at in enumerate(times)]

    class Pagination(CursorPagination):
        ordering = ("-updated_at", "-id")  # type: ignore[assignment]

    class Rows(list):  # what DRF's pagination reads: ordered, sliced
        def order_by(self, *fields: str) -> Rows:
            return self

    request = rf.get("/api/v1/deals", {"page_size": "4"})
    from rest_framework.request import Request

    pagination = Pagination()
    pagination.paginate_queryset(Rows(rows), Request(request))
    expected = pagination.get_next_link()
    url = request.build_absolute_uri()
    assert first_page_next_link(rows, page_size=4, field="updated_at", url=url) == expected


def _counter(prefix: str) -> int:
    """This day's count of the key's rate limit, as the throttles keep it in Redis."""
    import time

    from django.core.cache import caches

    backend = caches["default"]
    key = backend.make_key(f"throttle_api_key_{prefix}:{int(time.time() // 86400)}")
    return int(backend._cache.get_client(None).get(key) or 0)


def test_a_high_limit_is_counted_in_leases_never_beyond_the_limit(
    serve: Callable[..., Answer], quant_key: str, settings: Any
) -> None:
    """5,000 a day: leases of 5 hits. The fifth answer after a lease costs no round trip; near
    the limit a lease shrinks to what fits, and past it Django answers the 429."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "5000/day"}}
    prefix = quant_key.partition(".")[0]
    _warm(serve, "/api/v1/entitlements", quant_key)
    assert _counter(prefix) == 1  # Django's own hit
    assert not serve("/api/v1/entitlements", quant_key).by_django
    assert _counter(prefix) == 6  # a lease of 5: this request and 4 more
    for _ in range(4):
        assert not serve("/api/v1/entitlements", quant_key).by_django
    assert _counter(prefix) == 6
    assert not serve("/api/v1/entitlements", quant_key).by_django
    assert _counter(prefix) == 11

    from django.core.cache import caches

    from core.throttling import leases_forget

    leases_forget()
    backend = caches["default"]
    import time

    counter = backend.make_key(f"throttle_api_key_{prefix}:{int(time.time() // 86400)}")
    backend._cache.get_client(None).set(counter, 4998)
    for _ in range(2):  # the lease shrinks to the 2 hits that fit
        assert not serve("/api/v1/entitlements", quant_key).by_django
    assert _counter(prefix) == 5000
    refused = serve("/api/v1/entitlements", quant_key)
    assert (refused.by_django, refused.status) == (True, 429)
    assert _counter(prefix) == 5000


def test_a_failure_counted_here_drops_the_leases_so_the_failure_limit_holds_at_once(
    serve: Callable[..., Answer], quant_key: str, settings: Any
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "100000/day"}}
    settings.API_FAILURE_RATE_LIMIT = "1/min"
    _warm(serve, "/api/v1/entitlements", quant_key)
    assert not serve("/api/v1/entitlements", quant_key).by_django  # holds a lease of 100 now
    assert serve("/api/v1/entitlements", "AbCdEfGh.not-a-key").status == 401
    refused = serve("/api/v1/entitlements", quant_key)
    assert (refused.by_django, refused.status) == (True, 429)


@pytest.mark.django_db(transaction=True)
def test_the_key_and_the_answer_are_read_on_one_pooled_connection(
    serve: Callable[..., Answer], quant_key: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request holds at most one connection, so a pool as large as the thread count never
    runs dry: the key (read on every request here) and the answer share one, and Django's own
    connection is not opened."""
    from django.db import connections

    settings.API_KEY_CACHE_TTL = timedelta(0)
    _warm(serve, "/api/v1/entitlements", quant_key)
    connections["default"].close()
    pool = connections["default"].pool
    taken = []
    connection = pool.connection

    def watched_connection(*args: Any, **kwargs: Any) -> Any:
        taken.append(connections["default"].connection is not None)
        return connection(*args, **kwargs)

    monkeypatch.setattr(pool, "connection", watched_connection)
    answer = serve("/api/v1/entitlements", quant_key)
    assert (answer.by_django, answer.status, taken) == (False, 200, [False])
    assert connections["default"].connection is None


@pytest.mark.django_db(transaction=True)
def test_on_a_pooled_connection_the_answers_are_djangos_byte_for_byte(
    serve: Callable[..., Answer], quant_key: str, buyer_client: Any
) -> None:
    """Outside a test's transaction the fast path reads on its own pooled connection, with its
    own timestamp loader and prepared statements: the same bytes, microseconds and zones included."""
    seller = AccountFactory(role=Role.SELLER)
    BuyerAuthorization.objects.create(seller=seller, buyer=buyer_client.account)
    moment = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    deals = [
        Deal.objects.create(
            seller=seller, name=f"d{n}", currency="JPY", total_price=1000 + n, final_price=1000 + n, updated_at=moment
        )
        for n in range(3)
    ]
    Deal.objects.filter(pk=deals[0].pk).update(updated_at=moment + timedelta(microseconds=1))
    reads = [
        ("/api/v1/entitlements?page_size=1", quant_key),
        ("/api/v1/deals?page_size=2", buyer_client.key),
        (f"/api/v1/deals/{deals[1].public_id}", buyer_client.key),
    ]
    for path, key in reads:
        serve(path, key)  # the key's last use written
        for _ in range(3):  # the statements prepared on the connection from here on
            fast = serve(path, key)
            django_answer = serve(path, key, through_django=True)
            assert not fast.by_django
            assert (fast.status, fast.headers, fast.body) == (200, django_answer.headers, django_answer.body)
