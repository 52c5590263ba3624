from django.urls import path

from entitlements import apis

urlpatterns = [
    path("access-requests", apis.AccessRequestListCreateApi.as_view(), name="access-request-list"),
    path("access-requests/<int:request_id>", apis.AccessRequestDetailApi.as_view(), name="access-request-detail"),
    path(
        "access-requests/<int:request_id>/cancel", apis.AccessRequestCancelApi.as_view(), name="access-request-cancel"
    ),
    path("entitlements", apis.EntitlementListApi.as_view(), name="entitlement-list"),
    path("ops/access-requests", apis.OpsAccessRequestListApi.as_view(), name="ops-access-request-list"),
    path(
        "ops/access-requests/<int:request_id>",
        apis.OpsAccessRequestDetailApi.as_view(),
        name="ops-access-request-detail",
    ),
    path(
        "ops/access-requests/<int:request_id>/approve",
        apis.OpsAccessRequestApproveApi.as_view(),
        name="ops-access-request-approve",
    ),
    path(
        "ops/access-requests/<int:request_id>/refuse",
        apis.OpsAccessRequestRefuseApi.as_view(),
        name="ops-access-request-refuse",
    ),
    path("ops/grants", apis.OpsGrantListCreateApi.as_view(), name="ops-grant-list"),
    path("ops/grants/<int:grant_id>", apis.OpsGrantDetailApi.as_view(), name="ops-grant-detail"),
    path("ops/grants/<int:grant_id>/revoke", apis.OpsGrantRevokeApi.as_view(), name="ops-grant-revoke"),
]
