import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# The check of query parameters reads them from the OpenAPI schema: build it while the
# process starts, not during a client's first request.
from core.middleware import declared_query_parameters  # noqa: E402

declared_query_parameters()
