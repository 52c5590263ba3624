from collections.abc import Iterator
from datetime import timedelta

import pytest

from catalog.models import Dataset
from config.celery import app as celery_app
from tests.factories import GrantFactory
from tests.fakes.coincap import FakeCoinCap


@pytest.fixture
def coincap(settings) -> Iterator[FakeCoinCap]:
    """A local CoinCap answering from fixtures; the app is configured to use it."""
    fake = FakeCoinCap().start()
    settings.COINCAP_BASE_URL = fake.url
    settings.COINCAP_API_KEY = "test-coincap-key"
    settings.PRICE_SOURCE = "coincap"
    settings.COINCAP_BACKOFF = timedelta(seconds=0.01)
    settings.COINCAP_MAX_RETRIES = 2
    settings.COINCAP_READ_TIMEOUT = timedelta(seconds=2.0)
    yield fake
    fake.stop()


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def btc(catalog) -> Dataset:
    return Dataset.objects.prefetch_related("frequencies").get(symbol="BTC")


@pytest.fixture
def eth(catalog) -> Dataset:
    return Dataset.objects.prefetch_related("frequencies").get(symbol="ETH")


@pytest.fixture
def entitled(quant_client, btc):
    """A quant with active grants on BTC at 1h, 1d and 1mo."""
    for frequency in ("1h", "1d", "1mo"):
        GrantFactory(account=quant_client.account, dataset=btc, frequency=frequency)
    return quant_client
