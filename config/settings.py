"""VidJudge settings, read from the environment through one ``env`` object.

The embedded default (no variables at all) is a single-process install: SQLite under
``var/``, tasks run in process, media under ``var/media``. Production sets ``DEBUG=false``,
``SECRET_KEY``, ``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``REDIS_URL``.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local .env file is read when present; real environment variables win.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)

# pyarrow's allocator, read when pyarrow is first imported (after this module): the system
# allocator hands freed buffers back, where the default pool keeps ~20-35 MB after a large read;
# that margin is what keeps streamed exports of 1M judgments under 300 MB (docs/benchmarks.md).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", env.str("ARROW_DEFAULT_MEMORY_POOL", default="system"))

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (production refuses to start without it)."
        )
    SECRET_KEY = "insecure-embedded-default-key-for-local-use-only"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "annotation",
    "metrics",
    "frontend",
]

MIDDLEWARE = [
    # First: /healthz answers before host validation and the HTTPS redirect (see config/health.py).
    "config.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Database -----------------------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'vidjudge.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the in-process task thread write while requests read.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (Redis when configured) --------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth ---------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "frontend:login"
LOGIN_REDIRECT_URL = "frontend:home"
LOGOUT_REDIRECT_URL = "frontend:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "static"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))).resolve()
# Directories manifests may point into; a video path outside all of them is refused.
IMPORT_ROOTS = [Path(p).resolve() for p in env.list("IMPORT_ROOTS", default=[str(VAR_DIR / "imports")])]
IMPORT_URLS_ENABLED = env.bool("IMPORT_URLS_ENABLED", default=False)
IMPORT_URL_ALLOWED_HOSTS = env.list("IMPORT_URL_ALLOWED_HOSTS", default=[])
IMPORT_MAX_UPLOAD_BYTES = env.int("IMPORT_MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Largest video the media pipeline accepts, and the size transcodes are bounded to.
MEDIA_MAX_VIDEO_BYTES = env.int("MEDIA_MAX_VIDEO_BYTES", default=2 * 1024 * 1024 * 1024)
MEDIA_TRANSCODE_MAX_HEIGHT = env.int("MEDIA_TRANSCODE_MAX_HEIGHT", default=1080)
# "django" serves media itself with Range support; "nginx" answers with X-Accel-Redirect.
MEDIA_SERVE = env.str("MEDIA_SERVE", default="django")
MEDIA_ACCEL_PREFIX = env.str("MEDIA_ACCEL_PREFIX", default="/protected-media/")
# Where originals, browser copies and posters live: "filesystem" (MEDIA_ROOT, shared by every
# process) or "s3" (an S3-compatible bucket; workers fetch to scratch files, browsers get
# presigned URLs). See annotation/storage.py and docs/deploy.md.
MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="filesystem")
MEDIA_S3_BUCKET = env.str("MEDIA_S3_BUCKET", default="")
MEDIA_S3_ENDPOINT_URL = env.str("MEDIA_S3_ENDPOINT_URL", default="")  # empty: AWS S3
# The endpoint browsers reach, when it differs from the servers' (e.g. http://minio:9000 inside).
MEDIA_S3_PUBLIC_ENDPOINT_URL = env.str("MEDIA_S3_PUBLIC_ENDPOINT_URL", default="")
MEDIA_S3_REGION = env.str("MEDIA_S3_REGION", default="")
MEDIA_S3_ACCESS_KEY_ID = env.str("MEDIA_S3_ACCESS_KEY_ID", default="")  # empty: boto3's own chain
MEDIA_S3_SECRET_ACCESS_KEY = env.str("MEDIA_S3_SECRET_ACCESS_KEY", default="")
MEDIA_S3_ADDRESSING_STYLE = env.str("MEDIA_S3_ADDRESSING_STYLE", default="path")  # "virtual" for AWS
MEDIA_URL_EXPIRES = env.int("MEDIA_URL_EXPIRES", default=3600)  # lifetime of a presigned video URL
MEDIA_WORK_DIR = env.str("MEDIA_WORK_DIR", default="")  # s3 scratch files; empty: the system's temp
if MEDIA_STORAGE not in ("filesystem", "s3"):
    raise ImproperlyConfigured(f"MEDIA_STORAGE must be 'filesystem' or 's3', not {MEDIA_STORAGE!r}.")
if MEDIA_STORAGE == "s3" and not MEDIA_S3_BUCKET:
    raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs MEDIA_S3_BUCKET.")


def _s3_options(endpoint_url: str) -> dict:
    options = {
        "bucket_name": MEDIA_S3_BUCKET,
        "endpoint_url": endpoint_url or None,
        "region_name": MEDIA_S3_REGION or None,
        "addressing_style": MEDIA_S3_ADDRESSING_STYLE,
        "signature_version": "s3v4",
        "querystring_auth": True,
        "querystring_expire": MEDIA_URL_EXPIRES,
        "file_overwrite": True,
        "default_acl": None,
    }
    if MEDIA_S3_ACCESS_KEY_ID:
        options.update(access_key=MEDIA_S3_ACCESS_KEY_ID, secret_key=MEDIA_S3_SECRET_ACCESS_KEY)
    return options


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "media": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
}
if MEDIA_STORAGE == "s3":
    STORAGES["media"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _s3_options(MEDIA_S3_ENDPOINT_URL)}
    if MEDIA_S3_PUBLIC_ENDPOINT_URL:
        # Used only to sign URLs (no request is made with it).
        STORAGES["media_public"] = {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": _s3_options(MEDIA_S3_PUBLIC_ENDPOINT_URL),
        }

# --- Tasks --------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
# Without a broker, tasks run in this process: in a background thread ("thread", the
# embedded default, so uploads return at once) or inline ("eager", used by tests).
TASKS_IN_PROCESS = not CELERY_BROKER_URL
TASKS_IN_PROCESS_MODE = env.str("TASKS_IN_PROCESS_MODE", default="thread")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "annotation.tasks.*": {"queue": "media"},
    "metrics.tasks.*": {"queue": "metrics"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Exports and pulls -------------------------------------------------------------------
# Above this many judgments an export runs as a background job (202 + a job to poll).
EXPORT_SYNC_MAX_JUDGMENTS = env.int("EXPORT_SYNC_MAX_JUDGMENTS", default=200_000)
EXPORT_ROOT = env.str("EXPORT_ROOT", default="")  # empty: MEDIA_ROOT/exports
# How long a judgments pull waits for in-flight transactions before settling its high-water mark.
JUDGMENTS_SETTLE_WAIT_SECONDS = env.float("JUDGMENTS_SETTLE_WAIT_SECONDS", default=1.0)

# --- Dashboard and analysis cache ----------------------------------------------------------
# After judgments change, the cached analysis is served marked stale while at most one refresh
# task per project runs per this many seconds.
DASHBOARD_REFRESH_DEBOUNCE_SECONDS = env.int("DASHBOARD_REFRESH_DEBOUNCE_SECONDS", default=30)
# A cached analysis not checked for this long is compared with the database by a refresh task
# (catches changes made outside the services, e.g. in the admin).
DASHBOARD_RECHECK_SECONDS = env.int("DASHBOARD_RECHECK_SECONDS", default=3600)

# --- Metrics ------------------------------------------------------------------------------
METRICS_ENABLED = env.list("METRICS_ENABLED", default=[])  # empty: every registered metric
METRICS_DISABLED = env.list("METRICS_DISABLED", default=[])
METRICS_EXTRA = env.list("METRICS_EXTRA", default=[])  # dotted paths of extra metric modules
CLIP_MODEL = env.str("CLIP_MODEL", default="ViT-B-32")
CLIP_PRETRAINED = env.str("CLIP_PRETRAINED", default="openai")
CLIP_CHECKPOINT = env.str("CLIP_CHECKPOINT", default="")
RAFT_WEIGHTS = env.str("RAFT_WEIGHTS", default="")
METRICS_DEVICE = env.str("METRICS_DEVICE", default="")  # "" = cuda when present, else cpu
CLIP_ALLOW_DOWNLOAD = env.bool("CLIP_ALLOW_DOWNLOAD", default=False)  # fetch a pretrained tag at run time
CLIP_CACHE_DIR = env.str("CLIP_CACHE_DIR", default="") or None
CLIP_RETRY_LOAD_SECONDS = env.int("CLIP_RETRY_LOAD_SECONDS", default=300)
METRICS_ENQUEUE_ON_READY = env.bool("METRICS_ENQUEUE_ON_READY", default=True)
METRICS_BATCH_SIZE = env.int("METRICS_BATCH_SIZE", default=8)
METRICS_CLIP_BATCH_FRAMES = env.int("METRICS_CLIP_BATCH_FRAMES", default=64)
METRICS_DECODE_WORKERS = env.int("METRICS_DECODE_WORKERS", default=0)  # 0 = one per core
METRICS_TASK_SOFT_TIME_LIMIT = env.int("METRICS_TASK_SOFT_TIME_LIMIT", default=1800)
METRICS_TASK_TIME_LIMIT = env.int("METRICS_TASK_TIME_LIMIT", default=1920)
METRICS_TASK_MAX_RETRIES = env.int("METRICS_TASK_MAX_RETRIES", default=5)

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "VidJudge API",
    "DESCRIPTION": "Human-preference evaluation of text-to-video generators.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Security (production) ----------------------------------------------------------------
# With DEBUG off these default to what `manage.py check --deploy` asks for; each can be turned
# down from the environment (e.g. SECURE_SSL_REDIRECT=false behind a proxy that redirects itself).
if not DEBUG:
    # nginx (docker/nginx.conf.template) sets X-Forwarded-Proto from the connection it
    # terminated, overwriting whatever the client sent; the web port is not published.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600)  # raise to a year once HTTPS is proven
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
    # Asking browsers to preload HSTS is a commitment that is hard to undo (every subdomain,
    # for months), so it is the operator's choice (SECURE_HSTS_PRELOAD=true), not a default;
    # its reminder (W021) is silenced only while preload is off.
    SILENCED_SYSTEM_CHECKS = env.list(
        "SILENCED_SYSTEM_CHECKS", default=[] if SECURE_HSTS_PRELOAD else ["security.W021"]
    )

# --- Security (D2) ------------------------------------------------------------------------
# Sign-in throttling for the login page and POST /api/v1/auth/token/ (config/login_throttle.py):
# failed attempts per username and client address, and per address, within a window.
LOGIN_FAILURES_PER_USER = env.int("LOGIN_FAILURES_PER_USER", default=5)
LOGIN_FAILURES_PER_ADDRESS = env.int("LOGIN_FAILURES_PER_ADDRESS", default=100)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
# Proxies in front of the app that append the client to X-Forwarded-For (1 behind nginx). With
# 0 the client is REMOTE_ADDR and X-Forwarded-For is ignored (DRF's default would trust it).
REST_FRAMEWORK["NUM_PROXIES"] = env.int("NUM_PROXIES", default=0)
# Request bodies over their limit are refused with 413 before they are read: multipart uploads
# at IMPORT_MAX_UPLOAD_BYTES, anything else at DATA_UPLOAD_MAX_MEMORY_SIZE. A view that fails
# because the database cannot be reached answers 503 at once (config/middleware.py).
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "config.middleware.RequestSizeLimitMiddleware",
)
MIDDLEWARE.append("config.middleware.DatabaseUnavailableMiddleware")
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # Fail fast instead of hanging when the database host does not answer.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
# Redis is not on the rater path: an unreachable Redis reads as an empty cache (config/cache.py).
if REDIS_URL and CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "config.cache.FailSoftRedisCache"
    CACHES["default"].setdefault("OPTIONS", {}).update({"socket_connect_timeout": 1, "socket_timeout": 2})
# Task messages go through a transactional outbox (config/tasks.py, outbox/): a broker outage
# neither fails the request that enqueues nor loses its work; workers relay what is left.
INSTALLED_APPS.append("outbox")
OUTBOX_RELAY_SECONDS = env.int("OUTBOX_RELAY_SECONDS", default=10)
OUTBOX_RELAY_MIN_AGE_SECONDS = env.int("OUTBOX_RELAY_MIN_AGE_SECONDS", default=5)
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # a worker waits out a broker outage, however long
# A message whose worker died (SIGKILL, lost machine) is delivered again after this many
# seconds; it must be longer than the longest task (METRICS_TASK_TIME_LIMIT).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=max(3600, 2 * METRICS_TASK_TIME_LIMIT)),
    "socket_connect_timeout": 2,
}
if env.int("CELERY_UNACKED_RESTORE_SECONDS", default=0):  # how often workers look for them (kombu: ~100 s)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        unacked_restore_interval=env.int("CELERY_UNACKED_RESTORE_SECONDS"), unacked_restore_throttle=1
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # One line per task at INFO drowns the demo's console; failures still show.
        "celery.app.trace": {"level": "WARNING"},
    },
}
