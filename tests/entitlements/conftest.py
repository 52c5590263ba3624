from collections.abc import Callable
from typing import Any

import pytest

from catalog.models import ApprovalMode, DatasetFrequency
from config.celery import app as celery_app
from webhooks.models import Event

ACCESS_REQUESTS = "/api/v1/access-requests"
OPS_REQUESTS = "/api/v1/ops/access-requests"
OPS_GRANTS = "/api/v1/ops/grants"
ENTITLEMENTS = "/api/v1/entitlements"


@pytest.fixture
def auto_approve(catalog: None) -> Callable[[str, str], None]:
    """Switch a seeded dataset frequency to auto-approve, as Ops do in the Dataset admin."""

    def _switch(symbol: str, frequency: str) -> None:
        updated = DatasetFrequency.objects.filter(dataset__symbol=symbol, frequency=frequency).update(
            approval_mode=ApprovalMode.AUTO_APPROVE
        )
        assert updated == 1

    return _switch


@pytest.fixture
def request_access(catalog: None) -> Callable[..., Any]:
    """POST an access request as ``client`` and return the 201 body."""

    def _request(client: Any, dataset: str = "BTC", frequencies: tuple[str, ...] = ("1h", "1d"), **extra: Any) -> Any:
        response = client.post(ACCESS_REQUESTS, {"dataset": dataset, "frequencies": list(frequencies), **extra})
        assert response.status_code == 201, response.content
        return response.json()

    return _request


@pytest.fixture
def tasks_in_process() -> Any:
    """Run Celery tasks in-process (the embedded mode's behaviour) instead of through the broker."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def events(event_type: str) -> list[Event]:
    return list(Event.objects.filter(type=event_type).prefetch_related("recipients").order_by("id"))


def recipient_ids(event: Event) -> set[int]:
    return {r.account_id for r in event.recipients.all()}
