"""SXT LIMS settings: twelve-factor, every knob an environment variable with a safe default.

Embedded default: SQLite under var/ and a Celery broker on the local file system (no server).
A facility sets DATABASE_URL (PostgreSQL, psycopg 3) and CELERY_BROKER_URL (Redis or RabbitMQ).
LIMS_PRODUCTION=1 switches on the HTTPS and cookie hardening that `check --deploy` asks for.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from lims.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LIMS_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

PRODUCTION = env_bool("LIMS_PRODUCTION", False)
DEBUG = env_bool("DEBUG", not PRODUCTION)


def _secret_key() -> str:
    """SECRET_KEY from the environment; in development a random key kept under var/ (never in git)."""
    key = env_str("SECRET_KEY", "")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when LIMS_PRODUCTION=1")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "axes",
    "lims",
    "grids",
    "vitrification",
    "characterization",
    "beamtime",
    "reconstruction",
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "lims.middleware.LoginRequiredMiddleware",
    # A dropped database connection is a 503 "try again" (nothing was written), not a server error.
    "lims.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its "too many attempts" answer.
    "axes.middleware.AxesMiddleware",
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

DATABASES = {"default": dj_database_url.parse(env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lims.sqlite3'}"))}
_ON_POSTGRESQL = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
# On PostgreSQL a server process keeps its connection for a minute instead of opening one per request:
# opening one costs PostgreSQL a new backend process, more than a page of the grid list takes (issue 10).
# The health check sends a SELECT 1 before a kept connection's first use in a request, so a connection the
# server dropped (a restart, a failover) is replaced instead of failing that request. SQLite opens a file.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60 if _ON_POSTGRESQL else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("DATABASE_CONN_HEALTH_CHECKS", _ON_POSTGRESQL)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker share the file: wait for the lock instead of failing, take the
    # write lock at BEGIN so read-then-write transactions cannot deadlock, and let readers run
    # beside the writer (WAL).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file (one per process), not shared-cache memory, so threads in race tests see
    # the real SQLite locking the app runs on.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

elif _ON_POSTGRESQL:
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # PostgreSQL's JIT compiles any query it estimates costly; the dashboard's grouped queries run in
    # tens of milliseconds and spent 20+ ms of each compiling. Off unless the facility asks for it.
    if not env_bool("DATABASE_JIT", False):
        _options["options"] = "-c jit=off"
    # Parameters bound by the server, and a query run 5 times on a connection prepared there: PostgreSQL then
    # skips parsing and planning it (0.3 ms of server time for a grid list's page query, as much as running
    # it). Off behind a pooler that cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        _options["server_side_binding"] = True
        _options["prepare_threshold"] = 5

if test_name := env_str("DATABASE_TEST_NAME", ""):
    # Lets two suites share one PostgreSQL server without sharing a test database.
    DATABASES["default"]["TEST"] = {"NAME": test_name}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a login after repeated failures before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_HOURS", 1)  # hours
# Lock the username from that address: a typo-prone colleague on the same network is not locked out,
# and guessing one account's password from one machine stops after AXES_FAILURE_LIMIT tries.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env_int("AXES_PROXY_COUNT", 0)
AXES_VERBOSE = False

# Content security policy (django-csp): scripts, styles, images and fonts from this site only; no
# inline script or style (templates use classes from static/css and handlers in static/js), no
# plugins, no framing. Images also as data: URIs (QR labels, previews drawn in the browser).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # the pages take the token from the form, never from the cookie
SESSION_COOKIE_SAMESITE = "Lax"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Without collectstatic (development, tests) WhiteNoise serves straight from the app folders.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Uploads above this stay on disk while they stream in instead of in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
# Light-microscopy uploads: refused above these (file size, pixels per plane, decoded bytes).
LIMS_IMAGE_MAX_BYTES = env_int("LIMS_IMAGE_MAX_BYTES", 2 * 1024**3)
LIMS_IMAGE_MAX_PIXELS = env_int("LIMS_IMAGE_MAX_PIXELS", 16384 * 16384)
LIMS_IMAGE_MAX_DECODED_BYTES = env_int("LIMS_IMAGE_MAX_DECODED_BYTES", 4 * 1024**3)
# Reconstruction: folders on the facility's storage that datasets may be registered from (colon-separated),
# and the size limits of an uploaded tilt series (file, and decoded float32 projections).
LIMS_DATA_ROOTS = [p for p in env_str("LIMS_DATA_ROOTS", "").split(":") if p.strip()]
LIMS_DATASET_MAX_BYTES = env_int("LIMS_DATASET_MAX_BYTES", 64 * 1024**3)
LIMS_DATASET_MAX_DECODED_BYTES = env_int("LIMS_DATASET_MAX_DECODED_BYTES", 16 * 1024**3)
# Above 64 MiB decoded, a file may not decode to more than this many times its own size (a 1 MB TIFF
# of zeros that decodes to 1 GiB is a bomb, not a micrograph).
LIMS_IMAGE_MAX_COMPRESSION_RATIO = env_int("LIMS_IMAGE_MAX_COMPRESSION_RATIO", 200)
# The licence RO-Crate exports of datasets and volumes carry (a URL and its name); CC BY 4.0 unless the
# facility or lab says otherwise.
LIMS_EXPORT_LICENSE = env_str("LIMS_EXPORT_LICENSE", "https://creativecommons.org/licenses/by/4.0/")
LIMS_EXPORT_LICENSE_NAME = env_str(
    "LIMS_EXPORT_LICENSE_NAME", "Creative Commons Attribution 4.0 International (CC BY 4.0)"
)
STORAGES = {
    # FileSystemStorage that never leaves a truncated file under a real name (lims/storage.py).
    "default": {"BACKEND": "lims.storage.AtomicFileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

REST_FRAMEWORK = {
    # Token first: an anonymous request is answered 401 with `WWW-Authenticate: Token` (DRF takes the
    # challenge from the first class; session authentication has none and would make it a 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Named, hashed, revocable, optionally read-only; DRF's clear-text authtoken keys were imported into it.
        "lims.tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # ?format=csv on every list (lims.csv_export streams it), besides JSON and the browsable API.
    "DEFAULT_RENDERER_CLASSES": [
        # DRF's JSON renderer writing with orjson (the same answers, a twentieth of a list's server time less).
        "lims.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
        "lims.csv_export.CSVRenderer",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "lims.api_base.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        # django-filter with related-record filters by id, so no filter tells which ids exist.
        "lims.api_base.FilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "lims.api_schema.AutoSchema",
    "EXCEPTION_HANDLER": "lims.api_base.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SXT LIMS API",
    "DESCRIPTION": "Grids, seeding, vitrification, checks, beamtime and reconstruction for cryo-SXT labs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response components (`Grid` answers, `GridRequest` is sent): read-only fields are
    # required in answers only, write-only ones in requests only, so both halves match what the server does.
    "COMPONENT_SPLIT_REQUEST": True,
    # /api/docs/ serves Swagger UI from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True, "displayOperationId": False},
    # The schema is an endpoint like any other: it needs a login.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # One schema name per choice set where field names collide across apps.
    "ENUM_NAME_OVERRIDES": {
        "GridStateEnum": "grids.lifecycle.GridState",
        "InstrumentKindEnum": "vitrification.models.InstrumentKind",
        "ImageKindEnum": "characterization.models.ImageKind",
        "SessionStatusEnum": "beamtime.models.SessionStatus",
        "ShipmentStatusEnum": "beamtime.models.ShipmentStatus",
        "DatasetFormatEnum": "reconstruction.models.DatasetFormat",
        "ImageFormatEnum": "characterization.models.ImageFormat",
    },
}

# Celery: JSON only; a job is acknowledged after it ran, so a crashed worker's job is redelivered.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Jobs asked for while the broker was down are recorded unsent; this sends them once it is back
# (`make run` starts beat inside its worker; a facility runs one `celery -A config beat`).
CELERY_BEAT_SCHEDULE = {
    "send-waiting-reconstruction-jobs": {"task": "reconstruction.tasks.dispatch_pending", "schedule": 60.0},
    "purge-stale-dataset-uploads": {"task": "reconstruction.tasks.purge_stale_uploads", "schedule": 24 * 3600.0},
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast (pidbox) messages; kombu's default is a "control" folder in the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
