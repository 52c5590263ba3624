from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import Role
from tests.deals.support import AUTHORIZED_BUYERS, DEALS, deal_body


@pytest.fixture
def post_deal() -> Callable[..., dict[str, Any]]:
    def _post(client: Any, **overrides: Any) -> dict[str, Any]:
        response = client.post(DEALS, deal_body(**overrides), format="json")
        assert response.status_code == 201, response.content
        return response.json()

    return _post


@pytest.fixture
def authorize() -> Callable[[Any, Any], None]:
    def _authorize(seller_client: Any, buyer_client: Any) -> None:
        response = seller_client.post(AUTHORIZED_BUYERS, {"buyer": buyer_client.account.ref}, format="json")
        assert response.status_code in (200, 201), response.content

    return _authorize


@pytest.fixture
def other_seller_client(make_client: Callable[..., Any]) -> Any:
    return make_client(Role.SELLER)


@pytest.fixture
def other_buyer_client(make_client: Callable[..., Any]) -> Any:
    return make_client(Role.BUYER)
