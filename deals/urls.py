from django.urls import path

from deals import apis

urlpatterns = [
    path("deals", apis.DealListCreateApi.as_view(), name="deal-list"),
    path("deals/<uuid:deal_id>", apis.DealDetailApi.as_view(), name="deal-detail"),
    path("authorized-buyers", apis.AuthorizedBuyerListCreateApi.as_view(), name="authorized-buyer-list"),
    path("authorized-buyers/<str:ref>", apis.AuthorizedBuyerDeleteApi.as_view(), name="authorized-buyer-detail"),
    path("authorized-sellers", apis.AuthorizedSellerListApi.as_view(), name="authorized-seller-list"),
]
