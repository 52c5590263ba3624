"""The main flows of both businesses through a Python client that openapi-python-client
generates from the schema a running gunicorn serves: what a third party would do.

The client raises on any status code the schema does not declare, so every answer on
these flows is also checked against the schema.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from accounts import services as account_services
from accounts.models import Role
from demo.seed import catalog_seed
from tests.core.conftest import Server
from tests.factories import AccountFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PACKAGE = "backoffice_client"


@pytest.fixture(scope="module")
def generated(gunicorn_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """Generate the client from the served schema, once per module, and import it."""
    root = tmp_path_factory.mktemp("client")
    bindir = Path(sys.executable).parent
    result = subprocess.run(
        [
            str(bindir / "openapi-python-client"),
            "generate",
            "--url",
            f"{gunicorn_server.url}/api/schema/?format=json",
            "--meta",
            "none",
            "--output-path",
            str(root / PACKAGE),
        ],
        env={**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


class Api:
    """The generated package, addressed by tag and operation module."""

    def __init__(self, package: ModuleType, server: Server) -> None:
        self.package = package.__name__
        self.server = server

    def client(self, role: str) -> tuple[Any, Any]:
        """A generated client authenticated as a new account of ``role``, and the account."""
        account = AccountFactory(role=role)
        _, key = account_services.api_key_create(account=account, name="generated client")
        client_module = importlib.import_module(f"{self.package}.client")
        client = client_module.AuthenticatedClient(
            base_url=self.server.url, token=key, prefix="Api-Key", raise_on_unexpected_status=True
        )
        return client, account

    def op(self, tag: str, name: str) -> Any:
        return importlib.import_module(f"{self.package}.api.{tag}.{name}")

    def model(self, name: str) -> Any:
        return getattr(importlib.import_module(f"{self.package}.models"), name)


@pytest.fixture
def api(generated: ModuleType, gunicorn_server: Server) -> Api:
    catalog_seed()
    return Api(generated, gunicorn_server)


def test_entitlements_flow_through_the_generated_client(api: Api) -> None:
    (quant, _), (ops, _) = api.client(Role.QUANT), api.client(Role.OPS)

    created = api.op("entitlements", "api_v1_access_requests_create").sync_detailed(
        client=quant,
        body=api.model("AccessRequestCreateInputRequest")(dataset="BTC", frequencies=["1d"], reason="backtests"),
    )
    assert created.status_code == HTTPStatus.CREATED, created.content
    request_id = created.parsed.id
    assert [item.status.value for item in created.parsed.items] == ["pending"]

    queue = api.op("ops", "api_v1_ops_access_requests_list").sync(
        client=ops, status=api.model("ApiV1OpsAccessRequestsListStatus")("pending")
    )
    assert request_id in [r.id for r in queue.results]

    approved = api.op("ops", "api_v1_ops_access_requests_approve_create").sync_detailed(
        request_id, client=ops, body=api.model("AccessRequestApproveInputRequest")(note="ok")
    )
    assert approved.status_code == HTTPStatus.OK, approved.content

    entitlements = api.op("entitlements", "api_v1_entitlements_list").sync(client=quant)
    [grant] = entitlements.results
    assert (grant.dataset, grant.frequency.value, grant.expires_at) == ("BTC", "1d", None)

    prices_op = api.op("pricing", "dataset_prices")
    frequency = api.model("DatasetPricesFrequency")("1d")
    page = prices_op.sync(
        "BTC",
        client=quant,
        frequency=frequency,
        start=dt.datetime(2023, 1, 1, tzinfo=dt.UTC),
        end=dt.datetime(2023, 1, 8, tzinfo=dt.UTC),
        page_size=5,
    )
    assert page.count == 5 and page.next_ is not None
    assert page.results[0].timestamp == dt.datetime(2023, 1, 1, tzinfo=dt.UTC)

    revoked = api.op("ops", "api_v1_ops_grants_revoke_create").sync_detailed(
        grant.id, client=ops, body=api.model("GrantRevokeInputRequest")(reason="contract ended")
    )
    assert revoked.status_code == HTTPStatus.OK, revoked.content
    refused = prices_op.sync_detailed("BTC", client=quant, frequency=frequency)
    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert (refused.parsed.status, refused.parsed.code) == (403, "not_entitled")

    again = api.op("ops", "api_v1_ops_grants_revoke_create").sync_detailed(
        grant.id, client=ops, body=api.model("GrantRevokeInputRequest")(reason="again")
    )
    assert again.status_code == HTTPStatus.CONFLICT
    assert (again.parsed.status, again.parsed.code) == (409, "grant_not_active")


def test_deals_flow_through_the_generated_client(api: Api) -> None:
    (seller, _), (buyer, buyer_account) = api.client(Role.SELLER), api.client(Role.BUYER)
    deal_op = api.op("deals", "api_v1_deals_partial_update")

    authorised = api.op("deals", "api_v1_authorized_buyers_create").sync_detailed(
        client=seller, body=api.model("AuthorizedBuyerInputRequest")(buyer=buyer_account.ref)
    )
    assert authorised.status_code == HTTPStatus.CREATED, authorised.content

    item = api.model("DealItemInputRequest")
    created = api.op("deals", "api_v1_deals_create").sync_detailed(
        client=seller,
        body=api.model("DealInputRequest")(
            name="Summer bundle",
            currency="GBP",
            items=[item(id="a", name="A", price="60.00"), item(id="b", name="B", price="40.00")],
        ),
    )
    assert created.status_code == HTTPStatus.CREATED, created.content
    deal = created.parsed
    assert (deal.status.value, deal.final_price, deal.discount) == ("available", "100.00", None)
    etag = created.headers["ETag"]
    assert created.headers["Location"].endswith(str(deal.id))

    listed = api.op("deals", "api_v1_deals_list").sync(client=buyer)
    assert [d.id for d in listed.results] == [deal.id]
    not_modified = api.op("deals", "api_v1_deals_retrieve").sync_detailed(
        deal.id, client=buyer, if_none_match=f"W/{etag}"
    )
    assert not_modified.status_code == HTTPStatus.NOT_MODIFIED

    sold = deal_op.sync_detailed(
        deal.id,
        client=seller,
        body=api.model("PatchedDealInputRequest")(status=api.model("DealStatusEnum")("sold")),
        if_match=etag,
    )
    assert sold.status_code == HTTPStatus.OK, sold.content
    assert (sold.parsed.status.value, sold.parsed.version) == ("sold", deal.version + 1)

    # The generated client's empty PATCH sends nothing the server would apply.
    empty = deal_op.sync_detailed(deal.id, client=seller, body=api.model("PatchedDealInputRequest")())
    assert empty.status_code == HTTPStatus.OK, empty.content
    assert (empty.parsed.status.value, empty.parsed.version) == ("sold", sold.parsed.version)

    stale = deal_op.sync_detailed(
        deal.id, client=seller, body=api.model("PatchedDealInputRequest")(name="x"), if_match=etag
    )
    assert stale.status_code == HTTPStatus.PRECONDITION_FAILED
    changing_sold = deal_op.sync_detailed(deal.id, client=seller, body=api.model("PatchedDealInputRequest")(name="x"))
    assert changing_sold.status_code == HTTPStatus.CONFLICT
    assert (changing_sold.parsed.status, changing_sold.parsed.code) == (409, "deal_sold")

    seen = api.op("deals", "api_v1_deals_retrieve").sync(deal.id, client=buyer)
    assert (seen.status.value, seen.version) == ("sold", sold.parsed.version)
