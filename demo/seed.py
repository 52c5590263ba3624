"""The data ``manage.py seed`` creates: the sold catalog, one demo account per role and a demo deal.

Each builder is idempotent and returns what it created, for the command to print. Writes go
through each app's own services where it has them, so the seed takes the same paths as the API.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from accounts import services as account_services
from accounts.models import Account, Role
from catalog.models import Dataset, DatasetFrequency, Frequency
from deals.models import Deal
from deals.services import authorization_create, deal_create

CATALOG = [
    {
        "symbol": "BTC",
        "name": "Bitcoin",
        "coincap_id": "bitcoin",
        "frequencies": [Frequency.HOUR, Frequency.DAY, Frequency.MONTH],
    },
    {"symbol": "ETH", "name": "Ethereum", "coincap_id": "ethereum", "frequencies": [Frequency.DAY]},
]

DEMO_ACCOUNTS = [
    ("demo-quant", Role.QUANT, "Demo Quant"),
    ("demo-ops", Role.OPS, "Demo Ops"),
    ("demo-seller", Role.SELLER, "Demo Seller"),
    ("demo-buyer", Role.BUYER, "Demo Buyer"),
]

DEMO_DEAL = {
    "name": "Demo bundle",
    "currency": "GBP",
    "discount": {"type": "percentage", "amount": Decimal("10")},
    "items": [
        {"id": "demo-1", "name": "Bundle", "price": Decimal("60.00")},
        {"id": "demo-2", "name": "Extra", "price": Decimal("40.00")},
    ],
}


@transaction.atomic
def catalog_seed() -> list[str]:
    """Ensure the sold catalog exists exactly as listed; existing approval modes are kept."""
    created = []
    for entry in CATALOG:
        dataset, made = Dataset.objects.get_or_create(
            symbol=entry["symbol"], defaults={"name": entry["name"], "coincap_id": entry["coincap_id"]}
        )
        if made:
            created.append(dataset.symbol)
        for frequency in entry["frequencies"]:
            _, made = DatasetFrequency.objects.get_or_create(dataset=dataset, frequency=frequency)
            if made:
                created.append(f"{dataset.symbol} {frequency}")
    return created


@transaction.atomic
def accounts_demo_seed() -> list[str]:
    """One demo account per role, each with an API key printed once, when it is created."""
    created = []
    for ref, role, name in DEMO_ACCOUNTS:
        account, made = account_services.account_get_or_create(ref=ref, role=role, name=name)
        if made:
            _, key = account_services.api_key_create(account=account, name="demo")
            created.append(f"{ref} ({role}) with API key {key}")
    return created


@transaction.atomic
def deals_demo_seed(*, seller: Account, buyer: Account) -> list[str]:
    """The demo seller authorises the demo buyer and posts one deal, once; returns what it created."""
    created = []
    _, authorized = authorization_create(seller=seller, buyer=buyer, actor=None)
    if authorized:
        created.append(f"{seller.ref} authorises {buyer.ref}")
    if not Deal.objects.filter(seller=seller, name=DEMO_DEAL["name"]).exists():
        written = deal_create(seller=seller, **DEMO_DEAL, actor=None)  # type: ignore[arg-type]
        created.append(f"deal {written.deal.public_id} by {seller.ref}")
    return created
