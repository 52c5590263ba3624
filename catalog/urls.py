from django.urls import path

from catalog import apis

urlpatterns = [
    path("datasets", apis.DatasetListApi.as_view(), name="dataset-list"),
    path("datasets/<str:symbol>", apis.DatasetDetailApi.as_view(), name="dataset-detail"),
]
