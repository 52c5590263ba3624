from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from core import apis as core_apis
from core import views as core_views

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("entitlements.urls")),
    path("", include("pricing.urls")),
    path("", include("deals.urls")),
    path("", include("webhooks.urls")),
]

urlpatterns = [
    path("", core_views.HomeView.as_view(), name="home"),
    path("healthz", core_apis.HealthApi.as_view(), name="healthz"),
    path("readyz", core_apis.ReadinessApi.as_view(), name="readyz"),
    path("api/schema/", core_apis.SchemaApi.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
]

handler404 = "core.errors.not_found_view"
handler500 = "core.errors.server_error_view"
