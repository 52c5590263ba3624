"""factory-boy factories shared by every test package."""

import factory

from accounts.models import Account, Role
from catalog.models import Dataset, Frequency


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account
        django_get_or_create = ("ref",)

    ref = factory.Sequence(lambda n: f"acct-{n}")
    name = factory.Faker("company")
    role = Role.QUANT
    email = factory.LazyAttribute(lambda o: f"{o.ref}@example.com")


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset
        django_get_or_create = ("symbol",)

    symbol = factory.Sequence(lambda n: f"X{n}")
    name = factory.LazyAttribute(lambda o: f"Asset {o.symbol}")
    coincap_id = factory.LazyAttribute(lambda o: o.symbol.lower())


class GrantFactory(factory.django.DjangoModelFactory):
    """An active grant; pass ``expires_at`` for a trial."""

    class Meta:
        model = "entitlements.Grant"

    account = factory.SubFactory(AccountFactory)
    dataset = factory.SubFactory(DatasetFactory)
    frequency = Frequency.DAY
