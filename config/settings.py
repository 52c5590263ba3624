"""Settings for the back office, read from the environment (see .env.example).

One module for every environment: what differs between a laptop demo, CI and
production is the environment, never the code path.

Grouped by topic; every duration is a ``datetime.timedelta``. Environment variables
keep their units (mostly seconds, as their names and .env.example say) and are wrapped
here. Settings that Django, Celery or psycopg read themselves keep the numbers those
libraries expect (``SECURE_HSTS_SECONDS``, ``CELERY_TASK_TIME_LIMIT``, the pool timeout).
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import environ
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    env.read_env(str(env_file))
# A variable set to an empty value (as `.env.example` lists the optional ones) means
# "not set": its default applies.
for _name in [name for name, value in os.environ.items() if value == ""]:
    del os.environ[_name]


def env_seconds(name: str, default: float) -> timedelta:
    """A duration given in seconds in the environment."""
    return timedelta(seconds=env.float(name, default=default))


def env_hours(name: str, default: float) -> timedelta:
    """A duration given in hours in the environment."""
    return timedelta(hours=env.float(name, default=default))


def env_days(name: str, default: int) -> timedelta:
    """A duration given in whole days in the environment."""
    return timedelta(days=env.int(name, default=default))


DEBUG = env.bool("DEBUG", default=False)

# Without DATABASE_URL the project runs as a self-contained demo: an embedded
# SQLite file and Celery tasks executed in-process.
EMBEDDED = "DATABASE_URL" not in os.environ

# --- Core Django ----------------------------------------------------------------------
if EMBEDDED or DEBUG:
    SECRET_KEY = env("SECRET_KEY", default="insecure-embedded-demo-key-change-me-0123456789abcdef")
else:
    SECRET_KEY = env("SECRET_KEY")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "django_celery_beat",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "accounts",
    "catalog",
    "entitlements",
    "pricing",
    "deals",
    "webhooks",
    "demo",
]

MIDDLEWARE = [
    "core.middleware.RequestGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Sessions, authentication and messages serve the admin; /api/ skips them (core.middleware).
    # CSRF stays Django's own: API views are exempt, so it only reads a flag there.
    "core.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.middleware.AuthenticationMiddleware",
    "core.middleware.FailureRateLimitMiddleware",
    "core.idempotency.IdempotencyMiddleware",
    "core.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# The embedded demo serves static files straight from the apps, without collectstatic.
WHITENOISE_USE_FINDERS = DEBUG or EMBEDDED
WHITENOISE_AUTOREFRESH = DEBUG or EMBEDDED
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or EMBEDDED
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

ADMIN_SITE_HEADER = env("ADMIN_SITE_HEADER", default="Back Office")

# --- Database -------------------------------------------------------------------------
if EMBEDDED:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", default=str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
else:
    DATABASES = {"default": env.db("DATABASE_URL")}
    # One broken connection found at checkout gets every idle one checked, so the first
    # request after a database restart or failover gets a live connection.
    DATABASES["default"]["ENGINE"] = "core.postgresql"
    DATABASES["default"]["OPTIONS"] = {
        # psycopg 3 connection pool, one per process; CONN_MAX_AGE must stay 0 with it.
        # The pool reads its timeout in seconds.
        "pool": {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        },
    }
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["CONN_MAX_AGE"] = 0

# --- Cache and Redis ------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="" if EMBEDDED else "redis://127.0.0.1:6379/0")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": env("CACHE_URL", default=REDIS_URL),
            "KEY_PREFIX": "bo",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://"
if CELERY_BROKER_URL.startswith("redis://"):
    CELERY_BROKER_TRANSPORT = "core.broker:Transport"  # kombu's, one client per pool to send
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = EMBEDDED
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery reads its time limits in seconds.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_DEFAULT_QUEUE = "default"
# A plain `celery -A config worker` consumes every queue; `-Q webhooks` etc. splits them out.
CELERY_TASK_QUEUES = [Queue(name, Exchange(name), routing_key=name) for name in ("default", "pricing", "webhooks")]
CELERY_TASK_ROUTES = {
    "pricing.tasks.*": {"queue": "pricing"},
    "webhooks.tasks.*": {"queue": "webhooks"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Reconnect for ever after a broker outage, and cancel tasks still running with a late
# acknowledgement when the connection drops (they are redelivered), rather than acknowledge
# them later on a channel that is gone: such an acknowledgement is what killed the worker.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Workers keep the logging configuration below (with its redaction) instead of installing their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Email ----------------------------------------------------------------------------
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if (DEBUG or EMBEDDED)
    else "django.core.mail.backends.smtp.EmailBackend",
)
if "EMAIL_URL" in os.environ:
    vars().update(env.email_url("EMAIL_URL"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="backoffice@localhost")
OPS_NOTIFICATION_EMAILS = env.list("OPS_NOTIFICATION_EMAILS", default=[])

# --- API: REST framework, limits, idempotency, OpenAPI --------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ApiKeyRateThrottle", "core.throttling.AnonymousRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env("API_RATE_LIMIT", default="6000/min"),
        "anon": env("API_ANON_RATE_LIMIT", default="600/min"),
    },
    # Proxies in front of the app that append to X-Forwarded-For (1 behind one load balancer):
    # anonymous rate limits key on the address the outermost trusted proxy saw. 0 trusts no
    # header and keys on the peer address, so a client cannot pick its own rate-limit bucket.
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=0),
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
    "URL_FORMAT_OVERRIDE": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=100)
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=1000)
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1_000_000)
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# 401 and 404 answers one client address may get per period before it is refused with 429.
API_FAILURE_RATE_LIMIT = env("API_FAILURE_RATE_LIMIT", default="120/min")
# The fast read path (core.hotpath) prepares its statements once per database connection.
# Behind PgBouncer in transaction mode this needs its max_prepared_statements (1.21+); or turn it off.
HOT_READS_PREPARE = env.bool("HOT_READS_PREPARE", default=True)
# How long an API key row is reused by a process before it is read again: a key revoked (or an
# account deactivated) in another process is refused within this time; 0 reads it on every request.
API_KEY_CACHE_TTL = env_seconds("API_KEY_CACHE_SECONDS", default=1.0)
# The public catalog: how long a process reuses the answer it built (a change made in another
# process shows within this time), and the max-age clients and proxies may cache it for.
CATALOG_CACHE_TTL = env_seconds("CATALOG_CACHE_SECONDS", default=5.0)
CATALOG_MAX_AGE = env_seconds("CATALOG_MAX_AGE", default=60)
# Idempotency-Key answers are kept this long for replay; a claim older than the second
# whose request never answered is treated as abandoned (its process died).
IDEMPOTENCY_KEY_TTL = env_hours("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
IDEMPOTENCY_ABANDONED_AFTER = env_seconds("IDEMPOTENCY_ABANDONED_AFTER_SECONDS", default=120)

SPECTACULAR_SETTINGS = {
    "TITLE": "Back Office API",
    "DESCRIPTION": (
        "Dataset entitlements for quantitative traders and a deals marketplace for "
        "sellers and buyers. Authenticate with `Authorization: Api-Key <key>`. "
        "Errors are RFC 9457 problem details with a stable `code`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Distinct OpenAPI names for enums several models share a field name for ("status").
    "ENUM_NAME_OVERRIDES": {
        "AccessRequestStatusEnum": "entitlements.models.RequestStatus",
        "AccessRequestItemStatusEnum": "entitlements.models.ItemStatus",
        "GrantStatusEnum": "entitlements.models.GrantStatus",
        "DealStatusEnum": "deals.models.DealStatus",
        "DiscountTypeEnum": "deals.models.DiscountType",
    },
    # The error answers every operation shares (problem details, 401/403/404/429...).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.problem_responses",
    ],
}

# --- Webhooks -------------------------------------------------------------------------
# The embedded demo runs on one machine for one person: its webhooks go to URLs on that machine.
WEBHOOKS_ALLOW_PRIVATE_URLS = env.bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=EMBEDDED)
# Outbound timeouts (connect, and connect to last byte) and response bytes kept per attempt.
WEBHOOKS_CONNECT_TIMEOUT = env_seconds("WEBHOOKS_CONNECT_TIMEOUT", default=3.0)
WEBHOOKS_TIMEOUT = env_seconds("WEBHOOKS_TIMEOUT", default=15.0)
WEBHOOKS_MAX_RESPONSE_BYTES = env.int("WEBHOOKS_MAX_RESPONSE_BYTES", default=1024)
# The retry schedule (the wait before each retry, +/- jitter), the cap on a receiver's
# Retry-After, how long an endpoint may fail continuously before it is disabled, and the
# worker lease on a claimed delivery.
WEBHOOKS_RETRY_SCHEDULE = [
    timedelta(seconds=seconds)
    for seconds in env.list(
        "WEBHOOKS_RETRY_SCHEDULE", cast=float, default=[5, 30, 120, 300, 900, 1800, 3600, 7200, 14400, 21600, 28800]
    )
]
WEBHOOKS_RETRY_JITTER = env.float("WEBHOOKS_RETRY_JITTER", default=0.2)
WEBHOOKS_RETRY_AFTER_MAX = env_seconds("WEBHOOKS_RETRY_AFTER_MAX", default=3600.0)
WEBHOOKS_DISABLE_AFTER = env_seconds("WEBHOOKS_DISABLE_AFTER", default=5 * 24 * 3600.0)
WEBHOOKS_LEASE = env_seconds("WEBHOOKS_LEASE_SECONDS", default=60.0)
# Sending in each worker process: requests in flight at once, at most so many per endpoint
# (a slow receiver holds only its share), how many more may wait in memory for a slot, how
# long a delivery beyond those waits before it is due again, and how old an undispatched
# event must be before the sweeper takes it from the fast path. An event's deliveries beyond
# the first WEBHOOKS_FANOUT_CHUNK are sent by other tasks, a chunk each, so several workers
# share a large fan-out.
WEBHOOKS_SEND_CONCURRENCY = env.int("WEBHOOKS_SEND_CONCURRENCY", default=64)
WEBHOOKS_ENDPOINT_CONCURRENCY = env.int("WEBHOOKS_ENDPOINT_CONCURRENCY", default=8)
WEBHOOKS_ENDPOINT_BACKLOG = env.int("WEBHOOKS_ENDPOINT_BACKLOG", default=1000)
WEBHOOKS_DEFER = env_seconds("WEBHOOKS_DEFER_SECONDS", default=2.0)
WEBHOOKS_SWEEP_GRACE = env_seconds("WEBHOOKS_SWEEP_GRACE", default=10.0)
WEBHOOKS_FANOUT_CHUNK = env.int("WEBHOOKS_FANOUT_CHUNK", default=200)
WEBHOOKS_MAX_ENDPOINTS_PER_ACCOUNT = env.int("WEBHOOKS_MAX_ENDPOINTS_PER_ACCOUNT", default=20)

# --- Pricing --------------------------------------------------------------------------
COINCAP_BASE_URL = env("COINCAP_BASE_URL", default="https://rest.coincap.io/v3")
COINCAP_API_KEY = env("COINCAP_API_KEY", default="")
PRICE_SOURCE = env("PRICE_SOURCE", default="coincap" if COINCAP_API_KEY else "synthetic")
# CoinCap timeouts, retries on 429/5xx/timeouts with exponential backoff (from a base) and
# the cap on a Retry-After we honour; how long a span one history call may cover per
# interval; the first backfill depth; how many points one API request may fetch on
# demand; page sizes of the price endpoint.
COINCAP_CONNECT_TIMEOUT = env_seconds("COINCAP_CONNECT_TIMEOUT", default=3.05)
COINCAP_READ_TIMEOUT = env_seconds("COINCAP_READ_TIMEOUT", default=15.0)
COINCAP_MAX_RETRIES = env.int("COINCAP_MAX_RETRIES", default=3)
COINCAP_BACKOFF = env_seconds("COINCAP_BACKOFF", default=0.5)
COINCAP_RETRY_AFTER_MAX = env_seconds("COINCAP_RETRY_AFTER_MAX", default=30.0)
COINCAP_CHUNK_H1 = env_days("COINCAP_CHUNK_DAYS_H1", default=30)
COINCAP_CHUNK_D1 = env_days("COINCAP_CHUNK_DAYS_D1", default=365)
PRICE_BACKFILL = env_days("PRICE_BACKFILL_DAYS", default=365)
PRICE_ON_DEMAND_MAX_POINTS = env.int("PRICE_ON_DEMAND_MAX_POINTS", default=2160)
PRICE_PAGE_SIZE = env.int("PRICE_PAGE_SIZE", default=1000)
PRICE_MAX_PAGE_SIZE = env.int("PRICE_MAX_PAGE_SIZE", default=10000)
# Bytes of written-out price pages each process keeps for repeated requests of an
# unchanged series (pricing.selectors.PageKept); 0 keeps none.
PRICE_PAGE_CACHE_BYTES = env.int("PRICE_PAGE_CACHE_BYTES", default=32 * 1024 * 1024)

# --- Entitlements ---------------------------------------------------------------------
# After an Ops refusal, how long a new request for the same dataset frequency is refused
# automatically (0 disables), and how long before a trial ends the quant gets one
# access_grant.expiring notice. Both are given in hours.
ENTITLEMENTS_REFUSAL_COOLDOWN = env_hours("ENTITLEMENTS_REFUSAL_COOLDOWN", default=24.0)
GRANT_EXPIRING_NOTICE = env_hours("GRANT_EXPIRING_NOTICE", default=24.0)

# --- Security -------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not (DEBUG or EMBEDDED))
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not (DEBUG or EMBEDDED))
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers probe the health endpoints over plain HTTP, without X-Forwarded-Proto.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Django reads the HSTS max-age in seconds.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Failed admin logins allowed per client address and username within the window.
ADMIN_LOGIN_MAX_FAILURES = env.int("ADMIN_LOGIN_MAX_FAILURES", default=5)
ADMIN_LOGIN_WINDOW = env_seconds("ADMIN_LOGIN_WINDOW", default=900)

# --- Logging --------------------------------------------------------------------------
# Every handler redacts Api-Key values, whsec_ secrets and Authorization headers (core.redaction).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "core.redaction.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if EMBEDDED and not os.environ.get("BACKOFFICE_EMBEDDED_NOTICE"):
    # Printed once per process tree (runserver's reloader inherits the variable).
    os.environ["BACKOFFICE_EMBEDDED_NOTICE"] = "1"
    sys.stderr.write(
        f"Embedded mode: no DATABASE_URL, so data lives in SQLite at {DATABASES['default']['NAME']} "
        "and Celery tasks run in-process. Set DATABASE_URL and REDIS_URL for PostgreSQL and workers.\n"
    )
