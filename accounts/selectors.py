from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import Account, AccountAPIKey


def account_list() -> QuerySet[Account]:
    return Account.objects.all()


def account_get(*, ref: str) -> Account:
    return get_object_or_404(Account, ref=ref)


def api_key_list(*, account: Account) -> QuerySet[AccountAPIKey]:
    return AccountAPIKey.objects.filter(account=account).order_by("-created")


def api_key_get(*, account: Account, prefix: str) -> AccountAPIKey:
    return get_object_or_404(AccountAPIKey, account=account, prefix=prefix)


def accounts_with_role(*, role: str) -> QuerySet[Account]:
    return Account.objects.filter(role=role, is_active=True)
