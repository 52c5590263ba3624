"""One world for the security tests: an account of each role that owns one of everything,
another account of each owning role, all made through the real services and API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from catalog.models import Dataset
from entitlements import services as entitlement_services
from tests.conftest import AccountClient
from tests.deals.support import deal_body
from webhooks import services as webhook_services

PUBLIC_URL = "https://93.184.215.14/hooks"  # a public address literal: registration needs no DNS


@dataclass
class World:
    clients: dict[str, APIClient]
    """anonymous, quant, ops, seller, buyer: the owners of the objects below."""
    others: dict[str, AccountClient]
    """Another account of each owning role (quant, seller, buyer), owning nothing."""
    objects: dict[str, str]
    """Path parameter values: symbol, request_id, grant_id, deal_id, endpoint_id, delivery_id,
    quant_ref, buyer_ref, key_prefix (the quant's API key)."""

    def client(self, role: str) -> AccountClient:
        return self.clients[role]  # type: ignore[return-value]


@pytest.fixture
def world(make_client: Callable[..., AccountClient], catalog: None, settings: Any) -> World:
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    settings.PRICE_SOURCE = "synthetic"
    quant, ops, seller, buyer = (make_client(role) for role in (Role.QUANT, Role.OPS, Role.SELLER, Role.BUYER))
    others = {role: make_client(role) for role in (Role.QUANT, Role.SELLER, Role.BUYER)}
    btc = Dataset.objects.get(symbol="BTC")

    # The quant: a grant in force on BTC 1d, a pending request for BTC 1h.
    grant = entitlement_services.grant_create(
        account=quant.account, dataset=btc, frequency="1d", actor=ops.account, note="fixture"
    )
    access_request = entitlement_services.access_request_create(
        account=quant.account, dataset=btc, frequencies=["1h"], reason="research"
    )
    assert access_request.status == "pending"

    # The seller: authorises the buyer and posts a deal.
    response = seller.post("/api/v1/authorized-buyers", {"buyer": buyer.account.ref}, format="json")
    assert response.status_code == 201, response.content
    response = seller.post("/api/v1/deals", deal_body(), format="json")
    assert response.status_code == 201, response.content

    # The buyer: one webhook endpoint and one delivery to it.
    endpoint = webhook_services.endpoint_create(account=buyer.account, url=PUBLIC_URL, description="fixture")
    delivery = webhook_services.endpoint_ping(endpoint=endpoint, actor=None)

    return World(
        clients={"anonymous": APIClient(), "quant": quant, "ops": ops, "seller": seller, "buyer": buyer},
        others={str(role): client for role, client in others.items()},
        objects={
            "symbol": "BTC",
            "request_id": str(access_request.pk),
            "grant_id": str(grant.pk),
            "deal_id": response.json()["id"],
            "endpoint_id": str(endpoint.pk),
            "delivery_id": str(delivery.pk),
            "quant_ref": quant.account.ref,
            "buyer_ref": buyer.account.ref,
            "key_prefix": quant.key.partition(".")[0],
        },
    )
