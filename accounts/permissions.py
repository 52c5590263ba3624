from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import Account, Role


class _RolePermission(BasePermission):
    roles: frozenset[str] = frozenset()
    message = "This endpoint is not available to your role."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return isinstance(user, Account) and user.role in self.roles


def role_permission(*roles: Role) -> type[BasePermission]:
    """A permission class that admits authenticated accounts with one of ``roles``."""
    names = frozenset(str(role) for role in roles)
    return type(f"Is{'Or'.join(r.capitalize() for r in sorted(names))}", (_RolePermission,), {"roles": names})


IsQuant = role_permission(Role.QUANT)
IsOps = role_permission(Role.OPS)
IsSeller = role_permission(Role.SELLER)
IsBuyer = role_permission(Role.BUYER)
IsSellerOrBuyer = role_permission(Role.SELLER, Role.BUYER)
