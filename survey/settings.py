"""Django settings, read from environment variables.

The embedded default is a SQLite file under ``var/``. ``DATABASE_URL`` switches to
PostgreSQL. With ``DJANGO_DEBUG`` off (the default) the secret key and the allowed
hosts must be set, and a missing one stops the process at start.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DJANGO_VAR_DIR", BASE_DIR / "var"))


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    normalized = value.strip().lower()
    if normalized in {"1", "true", "yes", "on"}:
        return True
    if normalized in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use 1 or 0.")


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def required_in_production(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. It is required when DJANGO_DEBUG is off; "
            f"set it in the environment, or set DJANGO_DEBUG=1 for local development."
        )
    return value


DEBUG = env_flag("DJANGO_DEBUG")
HTTPS = env_flag("DJANGO_HTTPS")

if DEBUG:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "insecure-development-key-only-for-debug"
    ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS") or ["127.0.0.1", "localhost", "[::1]"]
else:
    SECRET_KEY = required_in_production("DJANGO_SECRET_KEY")
    ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
    if not ALLOWED_HOSTS:
        required_in_production("DJANGO_ALLOWED_HOSTS")

CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "survey",
]

MIDDLEWARE = [
    "survey.health.HealthCheckMiddleware",
    "survey.request_logging.RequestIdMiddleware",
    "survey.input_guard.Utf8InputMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Attendee pages cross slow venue Wi-Fi. Django's gzip adds random padding
    # against BREACH, and the CSRF token is masked anew on every response.
    "django.middleware.gzip.GZipMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "survey.ratelimit.AdminLoginThrottleMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "survey.urls"
WSGI_APPLICATION = "survey.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite is tuned for several gunicorn workers writing at once. WAL lets readers
# run beside the single writer. IMMEDIATE takes the write lock when a transaction
# starts, so a waiting writer honours the busy timeout instead of failing with
# "database is locked" when it upgrades a read lock. The timeout is in seconds.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": (
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "PRAGMA temp_store=MEMORY;"
        "PRAGMA cache_size=-20000;"
        "PRAGMA foreign_keys=ON;"
    ),
}

DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "CONN_MAX_AGE": 600,
            # A health check would cost a query per request, and a local file
            # does not drop connections the way a database server can.
            "CONN_HEALTH_CHECKS": False,
            # Tests run on a real file too, so that threads share one database;
            # one file per process, so that two test runs never share it.
            "TEST": {"NAME": VAR_DIR / f"test-{os.getpid()}.sqlite3"},
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Rate-limit counters must be shared by every worker and app server: Redis when
# REDIS_URL is set, otherwise a table in the main database (created by
# `manage.py createcachetable`).
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "survey",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "survey_cache",
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ko", "한국어")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# With DEBUG off, static files are served from STATIC_ROOT with hashed names,
# so `manage.py collectstatic` must run first (make demo and the Dockerfile do).

LOGIN_URL = "admin:login"

SESSION_COOKIE_AGE = 60 * 60 * 12
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

if HTTPS:
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_flag("DJANGO_HSTS_PRELOAD")
    if not SECURE_HSTS_PRELOAD:
        # Joining the browsers' preload list is hard to undo, so it is opt-in
        # through DJANGO_HSTS_PRELOAD and the deploy check's reminder is off.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    # Behind a TLS-terminating proxy, trust its forwarded-protocol header.
    if env_flag("DJANGO_BEHIND_PROXY", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Upload and form limits: a ballot is a few hundred bytes, so anything large is
# rejected before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "survey.request_logging.RequestContextFilter"},
    },
    "formatters": {
        "plain": {
            "format": (
                "%(asctime)s %(levelname)s %(name)s "
                "request_id=%(request_id)s participant=%(participant)s %(message)s"
            )
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_context"],
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"handlers": ["stdout"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}

# Google Sheets mirror (see docs/sheets.md). SHEETS_API_URL points the client at
# an emulator; with a loopback address no credentials are needed.
SHEETS_SPREADSHEET_ID = os.environ.get("SHEETS_SPREADSHEET_ID", "").strip()
SHEETS_WORKSHEET = os.environ.get("SHEETS_WORKSHEET", "").strip() or "responses"
SHEETS_API_URL = os.environ.get("SHEETS_API_URL", "").strip()
GOOGLE_APPLICATION_CREDENTIALS = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()

# A friendly 403 page for a failed CSRF check, most often caused by blocked cookies.
CSRF_FAILURE_VIEW = "survey.error_views.csrf_failure"

# Survey behaviour that organizers may change per deployment.
SURVEY_DEFAULT_SLUG = os.environ.get("SURVEY_DEFAULT_SLUG", "booth")
# Seconds without a tap, key press, scroll or typing after which a kiosk screen
# starts over in a fresh session. Without JavaScript it counts from page load.
SURVEY_KIOSK_IDLE_SECONDS = int(os.environ.get("SURVEY_KIOSK_IDLE_SECONDS", "90"))
# Seconds each process keeps an open survey and its topics and posts before
# reading them again (survey.catalog). An edit in the admin reaches the other
# processes within this time.
SURVEY_CATALOG_SECONDS = float(os.environ.get("SURVEY_CATALOG_SECONDS", "5"))

# Rate limits, per minute. A person answers a round in 15 s or more, so 30
# ballots a minute leaves room for double taps and retries. The per-IP ceiling
# lets a few hundred attendees behind one venue NAT answer at once.
SURVEY_RATE_BALLOTS_PER_MINUTE = int(os.environ.get("SURVEY_RATE_BALLOTS_PER_MINUTE", "30"))
SURVEY_RATE_POSTS_PER_IP_PER_MINUTE = int(
    os.environ.get("SURVEY_RATE_POSTS_PER_IP_PER_MINUTE", "1200")
)
SURVEY_ADMIN_LOGIN_FAILURES = int(os.environ.get("SURVEY_ADMIN_LOGIN_FAILURES", "10"))
SURVEY_ADMIN_LOGIN_WINDOW_SECONDS = 900
# Number of reverse proxies in front of gunicorn whose X-Forwarded-For is trusted.
SURVEY_TRUSTED_PROXY_COUNT = int(os.environ.get("SURVEY_TRUSTED_PROXY_COUNT", "0"))
