import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_wsgi_application()

# The hottest reads are answered in front of Django when they can be (core.hotpath);
# everything else, and any doubt, goes to Django.
from accounts.authentication import hot_caller  # noqa: E402
from core.hotpath import HotReads  # noqa: E402
from deals.hot import ROUTES as DEAL_ROUTES  # noqa: E402
from entitlements.hot import ROUTES as ENTITLEMENT_ROUTES  # noqa: E402
from pricing.hot import ROUTES as PRICING_ROUTES  # noqa: E402

application = HotReads(
    django_application,  # type: ignore[arg-type]  # an HttpResponse is an iterable of bytes
    [*PRICING_ROUTES, *DEAL_ROUTES, *ENTITLEMENT_ROUTES],
    authenticate=hot_caller,
)

# The check of query parameters reads them from the OpenAPI schema: build it while the
# process starts, not during a client's first request.
from core.middleware import declared_query_parameters  # noqa: E402

declared_query_parameters()
