from django.urls import path

from pricing import apis

urlpatterns = [
    path("datasets", apis.DatasetListApi.as_view(), name="dataset-list"),
    path("datasets/<str:symbol>", apis.DatasetDetailApi.as_view(), name="dataset-detail"),
    path("datasets/<str:symbol>/prices", apis.DatasetPricesApi.as_view(), name="dataset-prices"),
    path("datasets/<str:symbol>/market-caps", apis.DatasetMarketCapsApi.as_view(), name="dataset-market-caps"),
]
