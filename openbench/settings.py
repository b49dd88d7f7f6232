"""OpenBench settings, driven only by the environment (see .env.example).

With no environment at all the app runs on SQLite with a local-memory cache and the
in-process background executor; DATABASE_URL and REDIS_URL switch it to PostgreSQL,
django-redis and django-rq workers. Bad values fail fast with ImproperlyConfigured.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

# Lets admin/form classes be subscripted for type checking (ModelAdmin[Model]) at run time.
django_stubs_ext.monkeypatch()

# One BLAS thread per process. The web and rq processes are many single-threaded Python processes, and OpenBLAS's
# own pool (a thread per core, spinning while it waits) fought them for the cores: on the 2-core machine an arena
# ratings fit used 14 times the CPU (200 models, 20 bootstrap rounds: 4.2 s instead of 0.3 s). OpenBLAS reads this
# when numpy first loads it, which is after the settings (numpy is imported lazily); an operator's value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.bool("READ_DOT_ENV", default=False):
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=True)
_DEV_SECRET = "django-insecure-openbench-local-development-only"  # noqa: S105 - refused when DEBUG is off
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false.")
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured("SECRET_KEY must not be the development key when DEBUG is false.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}.")

# Wave 2 settings live beside this file, one module per concern; each reads the same environment.
from openbench.settings_arena import *  # noqa: E402,F403 - arena throttles, who may vote, ratings bootstrap
from openbench.settings_costs import *  # noqa: E402,F403 - estimates and budgets
from openbench.settings_interchange import *  # noqa: E402,F403 - import limits of the tests API (SPEC §14)
from openbench.settings_monitoring import *  # noqa: E402,F403 - drift thresholds, alert webhook and e-mail
from openbench.settings_oauth import *  # noqa: E402,F403 - sign-in with GitHub, Google, OpenID Connect (allauth)
from openbench.settings_signup import *  # noqa: E402,F403 - log-in limits, e-mail, headers, statement timeout, hosts
from openbench.settings_signup import TRUSTED_PROXY_COUNT  # noqa: E402 - named: the API's throttles use it
from openbench.settings_tracing import *  # noqa: E402,F403 - OpenTelemetry (on with OTEL_EXPORTER_OTLP_ENDPOINT)

INSTALLED_APPS = [
    "openbench.apps.AdminConfig",  # django.contrib.admin, its ModelAdmins discovered on first use (apps.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc from our own static files (SPEC §10 Headers)
    "csp",
    "django_prometheus",
    "django_rq",
    "axes",  # log-in limits (SPEC §10); its own migrations keep the attempts
    # Social sign-in only (SPEC §14); our own log-in, sign-up and password pages stay (accounts/oauth_urls.py).
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.openid_connect",
    "accounts",
    "catalog",
    "evaluations",
    "leaderboard",
    "providers",
    "judging",
    "monitoring",
    "arena",
    "openbench.apps.OpenBenchConfig",  # per-process start-up: tracing (openbench/tracing.py)
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "openbench.middleware.RequestIdMiddleware",
    # Sets DB_STATEMENT_TIMEOUT_MS on the request's connection (PostgreSQL) and resets it before it is returned.
    "openbench.middleware.StatementTimeoutMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as axes asks: it turns a request that hit a lock into the 429 of accounts.lockout.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "openbench.urls"
WSGI_APPLICATION = "openbench.wsgi.application"
ASGI_APPLICATION = "openbench.asgi.application"

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

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    # django-environ knows "postgresql://" and "postgres://"; the seed's SQLAlchemy
    # spelling "postgresql+asyncpg://" is accepted too so an old .env keeps working.
    _db_url = DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgresql+psycopg://", "postgresql://"
    )
    _scheme = _db_url.split("://", 1)[0] if "://" in _db_url else ""
    if _scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL has an unsupported scheme {_scheme!r}; use postgresql://user:pass@host:5432/db or sqlite:///path."
        )
    try:
        _default_db = env.db_url_config(_db_url)
    except Exception as exc:  # django-environ raises several types on a malformed URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
    _default_db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    _default_db["CONN_HEALTH_CHECKS"] = True
    if _default_db["ENGINE"].endswith("postgresql") and env.bool("DB_POOL", default=True):
        # A psycopg connection pool per process (SPEC §15): a request thread, the engine's database
        # thread or an executor thread borrows a connection and gives it back when Django closes it,
        # so a process never holds more than DB_POOL_MAX_SIZE connections however many threads it
        # runs; a thread that finds none free waits up to DB_POOL_TIMEOUT seconds. Without it every
        # runserver/gunicorn thread kept its own persistent connection, and 32 concurrent requests
        # exhausted max_connections. Pooled connections are reused, not persistent: CONN_MAX_AGE 0.
        _pool_min = env.int("DB_POOL_MIN_SIZE", default=2)
        _pool_max = env.int("DB_POOL_MAX_SIZE", default=10)
        _pool_timeout = env.float("DB_POOL_TIMEOUT", default=10.0)
        if not 0 <= _pool_min <= _pool_max or _pool_max < 1 or _pool_timeout <= 0:
            raise ImproperlyConfigured(
                "DB_POOL_MIN_SIZE must be between 0 and DB_POOL_MAX_SIZE (at least 1), DB_POOL_TIMEOUT above 0."
            )
        _default_db["CONN_MAX_AGE"] = 0
        _default_db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": _pool_min,
            "max_size": _pool_max,
            "timeout": _pool_timeout,
        }
        # A forked child (rq's work horse, gunicorn --preload) must not inherit the parent's pool.
        from openbench.dbpool import install as _install_pool_fork_guard

        _install_pool_fork_guard()
else:
    _default_db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env.str("SQLITE_PATH", default=str(BASE_DIR / "db.sqlite3")),
        # Background threads write results while requests read; wait instead of failing.
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        # Tests use a file too: an in-memory shared-cache database fails at once ("table is locked")
        # when the in-process executor's thread writes while a request thread reads.
        "TEST": {"NAME": str(Path(tempfile.gettempdir()) / f"openbench-test-{os.getpid()}.sqlite3")},
    }
DATABASES = {"default": _default_db}
# A read replica for analytics reads (SPEC §14, openbench/dbrouter.py): only with DATABASE_REPLICA_URL.
from openbench.settings_replica import replica_databases  # noqa: E402

DATABASES.update(replica_databases(_default_db))
if "replica" in DATABASES:
    DATABASE_ROUTERS = ["openbench.dbrouter.ReplicaRouter"]
    _after = MIDDLEWARE.index("openbench.middleware.RequestIdMiddleware") + 1
    MIDDLEWARE.insert(_after, "openbench.dbrouter.ReplicaRoutingMiddleware")  # a routing scope per request
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# Covering indexes (INCLUDE) speed up analytics on PostgreSQL; SQLite simply ignores the extra columns.
SILENCED_SYSTEM_CHECKS = [] if IS_POSTGRES else ["models.W040"]

# --- Cache, queues ----------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://.")
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="openbench"),
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
    RQ_QUEUES = {
        "evaluations": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": env.int("RQ_JOB_TIMEOUT", default=3600)},
        "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600},
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "openbench"}}
    # django_rq must be importable without Redis; these queues are never used then.
    RQ_QUEUES = {
        "evaluations": {"URL": "redis://127.0.0.1:6379/0"},
        "default": {"URL": "redis://127.0.0.1:6379/0"},
    }
USE_RQ = bool(REDIS_URL)
# `manage.py rqworker` uses this class unless told otherwise: it imports the engine and the provider
# SDKs once, before forking, instead of in every job (importing openai alone takes over a second).
# Every queue and worker of django_rq uses this job class: rq's, which also makes a run_batch request that
# manage.py queued by id alone into its job (evaluations.batch_handoff).
RQ = {
    "WORKER_CLASS": env.str("RQ_WORKER_CLASS", default="evaluations.worker.EvaluationWorker"),
    "JOB_CLASS": "evaluations.jobs.EvaluationJob",
}
# What that worker also imports before it forks, so that no job imports it again in its work horse: what
# jobs use but start-up leaves out (the scorers with jsonschema; the leaderboard's services and selectors
# with numpy, which take in results and warm the leaderboards; the drift check after a run).
WORKER_PRELOAD = [
    "evaluations.scoring.exact",
    "evaluations.scoring.judge",
    "evaluations.scoring.registry",
    "evaluations.scoring.structured",
    "leaderboard.services",
    "leaderboard.selectors",
    "monitoring.drift",
]

# --- Auth ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# AxesStandaloneBackend first: a locked account or address is refused before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "openbench.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "openbench.api.schema.OpenBenchAutoSchema",
    "EXCEPTION_HANDLER": "openbench.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "openbench.api.throttles.AnonRateThrottle",
        "openbench.api.throttles.TieredUserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="600/min"),
        "user": env.str("THROTTLE_USER", default="1200/min"),
        "run": env.str("THROTTLE_RUN", default="30/min"),
        "estimate": env.str("THROTTLE_ESTIMATE", default="120/min"),
        "export": env.str("THROTTLE_EXPORT", default="60/hour"),
        "test_write": env.str("THROTTLE_TEST_WRITE", default="120/hour"),
        "login": env.str("THROTTLE_LOGIN", default="10/min"),
        "register": env.str("THROTTLE_REGISTER", default="20/hour"),  # sign-up per client address
        "password_reset": env.str("THROTTLE_PASSWORD_RESET", default="10/hour"),
    },
    # Throttles read the client address with the same rule as accounts.addresses.client_ip.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    # The browsable API's renderer allows DRF's own style="" attributes on its pages only.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "openbench.api.renderers.BrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("ACCESS_TOKEN_EXPIRE_MINUTES", default=30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("REFRESH_TOKEN_EXPIRE_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "ALGORITHM": env.str("ALGORITHM", default="HS256"),
    "SIGNING_KEY": SECRET_KEY,
    "USER_ID_FIELD": "id",
    "AUTH_HEADER_TYPES": ("Bearer",),
    # A digest of the password hash in every token: any password change (API, page, reset, admin) revokes
    # the access and refresh tokens issued before it.
    "CHECK_REVOKE_TOKEN": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OpenBench API",
    "DESCRIPTION": "Community benchmark for large language models.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files, no CDN (SPEC §10 "Headers"); no
    # validator badge fetched from validator.swagger.io.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=1_048_576)

_cors_origins = env.list("CORS_ORIGINS", default=[])
# The seed wrote CORS_ORIGINS as a JSON list; accept that spelling as well.
CORS_ALLOWED_ORIGINS = [origin.strip().strip('[]"') for origin in _cors_origins if origin.strip().strip('[]"')]


# --- Internationalisation, static -------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security (production when DEBUG is false) -------------------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"


# --- Providers (keys never leave settings: not logged, not shown) ------------------------
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1")
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="https://api.anthropic.com")
GOOGLE_API_KEY = env.str("GOOGLE_API_KEY", default="")
GOOGLE_BASE_URL = env.str("GOOGLE_BASE_URL", default="https://generativelanguage.googleapis.com")
TOGETHER_API_KEY = env.str("TOGETHER_API_KEY", default="")
TOGETHER_BASE_URL = env.str("TOGETHER_BASE_URL", default="https://api.together.xyz/v1")
MES_API_URL = env.str("MES_API_URL", default="")
MES_API_KEY = env.str("MES_API_KEY", default="")
OLLAMA_BASE_URL = env.str("OLLAMA_BASE_URL", default="")
OPENAI_COMPATIBLE_BASE_URL = env.str("OPENAI_COMPATIBLE_BASE_URL", default="")
OPENAI_COMPATIBLE_API_KEY = env.str("OPENAI_COMPATIBLE_API_KEY", default="")


# --- Evaluation engine ---------------------------------------------------------------------
EVAL_CONCURRENCY = env.int("EVAL_CONCURRENCY", default=50)
EVAL_MAX_ATTEMPTS = env.int("EVAL_MAX_ATTEMPTS", default=4)
EVAL_CACHE = env.bool("EVAL_CACHE", default=True)
EVAL_BACKOFF_BASE_SECONDS = env.float("EVAL_BACKOFF_BASE_SECONDS", default=1.0)
EVAL_BACKOFF_MAX_SECONDS = env.float("EVAL_BACKOFF_MAX_SECONDS", default=60.0)
EVAL_BREAKER_THRESHOLD = env.int("EVAL_BREAKER_THRESHOLD", default=5)
EVAL_BREAKER_COOLDOWN_SECONDS = env.float("EVAL_BREAKER_COOLDOWN_SECONDS", default=30.0)
EVAL_STALE_AFTER_SECONDS = env.int("EVAL_STALE_AFTER_SECONDS", default=300)
# A `regex` custom scorer gives up on one answer after this long (catastrophic backtracking).
EVAL_REGEX_TIMEOUT_SECONDS = env.float("EVAL_REGEX_TIMEOUT_SECONDS", default=1.0)
EVAL_INPROCESS_WORKERS = env.int("EVAL_INPROCESS_WORKERS", default=2)
# One worker (or the in-process executor) runs up to this many executions at once, taking waiting jobs
# into its running event loop instead of finishing one job before it looks at the next (SPEC §15).
EVAL_WORKER_MAX_EXECUTIONS = env.int("EVAL_WORKER_MAX_EXECUTIONS", default=500)
JUDGE_MODEL = env.str("JUDGE_MODEL", default="")
# `run_batch --wait` hands its request to a worker before Django is set up, so its settings are read there from
# the environment (RUN_BATCH_HANDOFF, RUN_BATCH_HANDOFF_PICKUP_SECONDS, RUN_BATCH_HANDOFF_ANSWER_SECONDS); bad
# values are refused here all the same.
from evaluations.batch_handoff import handoff_timeouts  # noqa: E402 - imports nothing of Django or the apps

try:
    handoff_timeouts()
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
if EVAL_CONCURRENCY < 1 or EVAL_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured("EVAL_CONCURRENCY and EVAL_MAX_ATTEMPTS must be at least 1.")

# Per-provider limits: <PROVIDER>_CONCURRENCY and <PROVIDER>_RPM (0 = no rate limit).
from providers.registry import PROVIDER_NAMES  # noqa: E402 - the one list of providers; it imports no app models

PROVIDER_CONCURRENCY = {
    name: env.int(f"{name.upper()}_CONCURRENCY", default=EVAL_CONCURRENCY) for name in PROVIDER_NAMES
}
PROVIDER_RPM = {name: env.int(f"{name.upper()}_RPM", default=0) for name in PROVIDER_NAMES}


ANALYTICS_CACHE_SECONDS = env.int("ANALYTICS_CACHE_SECONDS", default=300)

# --- Logging: JSON lines with the request id ---------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "openbench.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO", "propagate": True},
        "httpx": {"level": "WARNING", "propagate": True},
    },
}
