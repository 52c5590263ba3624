from collections.abc import Callable

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Account, Role
from catalog.services import catalog_seed
from tests.factories import AccountFactory


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
