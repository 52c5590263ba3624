from django.urls import path

from pricing import apis

urlpatterns = [
    path("datasets/<str:symbol>/prices", apis.DatasetPricesApi.as_view(), name="dataset-prices"),
    path("datasets/<str:symbol>/market-caps", apis.DatasetMarketCapsApi.as_view(), name="dataset-market-caps"),
]
