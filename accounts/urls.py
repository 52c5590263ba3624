from django.urls import path

from accounts import apis

urlpatterns = [
    path("me", apis.MeApi.as_view(), name="me"),
    path("ops/accounts", apis.OpsAccountListCreateApi.as_view(), name="ops-account-list"),
    path("ops/accounts/<str:ref>", apis.OpsAccountDetailApi.as_view(), name="ops-account-detail"),
    path("ops/accounts/<str:ref>/api-keys", apis.OpsApiKeyListCreateApi.as_view(), name="ops-api-key-list"),
    path(
        "ops/accounts/<str:ref>/api-keys/<str:prefix>/revoke",
        apis.OpsApiKeyRevokeApi.as_view(),
        name="ops-api-key-revoke",
    ),
]
