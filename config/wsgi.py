import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# Built before the first request, not by it: the operations' declared query parameters.
from core.middleware import declared_query_parameters  # noqa: E402

declared_query_parameters()
