import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Account, Role
from demo.seed import catalog_seed
from tests.factories import AccountFactory
from tests.receiver import WebhookReceiver


@pytest.fixture(autouse=True, scope="session")
def _require_postgresql(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> None:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        assert connection.vendor == "postgresql", (
            "The test suite runs against PostgreSQL: set DATABASE_URL (make test does)."
        )


@pytest.fixture(autouse=True)
def _plain_static_storage(settings: pytest.FixtureRequest) -> None:
    # Tests do not run collectstatic, so the manifest storage has nothing to read.
    settings.STORAGES = {  # type: ignore[attr-defined]
        **settings.STORAGES,  # type: ignore[attr-defined]
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _isolated_cache(settings: pytest.FixtureRequest) -> None:
    # Rate-limit counters live in the shared Redis cache: give each test its own key space.
    settings.CACHES = {  # type: ignore[attr-defined]
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}  # type: ignore[attr-defined]
    }


class AccountClient(APIClient):
    account: Account
    key: str


@pytest.fixture
def make_client(db: None) -> Callable[..., AccountClient]:
    """An API client authenticated as a new account of ``role``."""

    def _make(role: str = Role.QUANT, **account_fields: object) -> AccountClient:
        account = AccountFactory(role=role, **account_fields)
        _, key = account_services.api_key_create(account=account, name="test")
        client = AccountClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        client.account = account
        client.key = key
        return client

    return _make


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def quant_client(make_client: Callable[..., AccountClient]) -> AccountClient:
    return make_client(Role.QUANT)


@pytest.fixture
def ops_client(make_client: Callable[..., AccountClient]) -> AccountClient:
    return make_client(Role.OPS)


@pytest.fixture
def seller_client(make_client: Callable[..., AccountClient]) -> AccountClient:
    return make_client(Role.SELLER)


@pytest.fixture
def buyer_client(make_client: Callable[..., AccountClient]) -> AccountClient:
    return make_client(Role.BUYER)


@pytest.fixture
def catalog(db: None) -> None:
    """The seeded catalog: BTC (1h, 1d, 1mo) and ETH (1d)."""
    catalog_seed()


# --- webhooks: a real receiver and synchronous delivery ---------------------------------


@pytest.fixture
def webhook_receiver(settings: pytest.FixtureRequest) -> Iterator[WebhookReceiver]:
    """A started local HTTP receiver (tests/receiver.py) that records what it gets; stopped after the test.

    Allows private URLs (WEBHOOKS_ALLOW_PRIVATE_URLS=True) so that endpoints may point at it.
    """
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True  # type: ignore[attr-defined]
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def deliver_now(settings: pytest.FixtureRequest) -> Callable[..., int]:
    """Run pending webhook work synchronously until nothing is due; returns the number of attempts made.

    Goes through the real code: the sweeper service fans out every event not yet
    dispatched and claims every due delivery, and each claim runs the real
    ``webhooks.tasks.delivery_attempt`` task function in this thread. Usage::

        services.deal_create(...)      # publishes an event
        deliver_now()
        webhook_receiver.wait_for(1)

    Works with the plain ``db`` fixture too (the sweeper finds the undispatched
    event). The on-commit fast path only runs in tests marked
    ``@pytest.mark.django_db(transaction=True)`` or inside
    ``django_capture_on_commit_callbacks(execute=True)``; without either, the
    on-commit enqueue never happens and ``deliver_now()`` is what delivers.
    Retries scheduled for later are not due: shorten them in the test with
    ``settings.WEBHOOKS_RETRY_SCHEDULE = [timedelta(0)] * 3`` if it needs them now.
    Allows private URLs (WEBHOOKS_ALLOW_PRIVATE_URLS=True) and sets WEBHOOKS_SWEEP_GRACE to 0.
    """
    from webhooks import services as webhook_services
    from webhooks import tasks as webhook_tasks

    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True  # type: ignore[attr-defined]
    # What this sweeper finds was just written, with no fast path running to leave it to.
    settings.WEBHOOKS_SWEEP_GRACE = timedelta(seconds=0)  # type: ignore[attr-defined]

    def _deliver(max_rounds: int = 50) -> int:
        attempts = 0

        def run(delivery_id: int, lease_token: str) -> None:
            nonlocal attempts
            attempts += 1
            webhook_tasks.delivery_attempt(delivery_id, lease_token)

        for _ in range(max_rounds):
            result = webhook_services.webhooks_sweep(deliver=run)
            if not result.dispatched and not result.claimed:
                return attempts
        raise AssertionError(f"webhook work still due after {max_rounds} rounds")

    return _deliver


@pytest.fixture
def api_keys_kept(settings: pytest.FixtureRequest) -> None:
    """The API key rows this process read stay in its cache for the whole test, however slow the
    machine: an exact query count then does not depend on API_KEY_CACHE_TTL running out between requests."""
    settings.API_KEY_CACHE_TTL = timedelta(hours=1)  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _broker_backoff_reset() -> Iterator[None]:
    # A test that made the broker unreachable must not leave the next one skipping it.
    from core.enqueue import broker_backoff_reset

    yield
    broker_backoff_reset()
