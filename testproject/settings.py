"""Settings for the demo site and the test suite.

One environment variable picks the database: ``MF_DB`` = ``sqlite`` (default),
``postgres`` or ``mariadb``. ``MF_WAFFLE_CACHE=redis`` puts waffle's cache on Redis;
``MF_STATE_CACHE_URL=redis://…`` turns the fleet tier on (``MAINTENANCE_STATE_CACHE``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get("MF_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("MF_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver", "[::1]", ".localhost"]
INTERNAL_IPS: list[str] = []

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "waffle",
    "maintenance_flags",  # above django.contrib.admin: its admin/base_site.html adds the banner
    "django.contrib.admin",
    "testproject",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "maintenance_flags.middleware.MaintenanceModeMiddleware",
]

ROOT_URLCONF = "testproject.urls"
SITE_ID = 1

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
                "maintenance_flags.context_processors.maintenance",
            ]
        },
    }
]

WSGI_APPLICATION = "testproject.wsgi.application"
ASGI_APPLICATION = "testproject.asgi.application"

_DB = os.environ.get("MF_DB", "sqlite")
_DB_NAME = os.environ.get("MF_DB_NAME")
if _DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _DB_NAME or "test",
            "USER": os.environ.get("MF_DB_USER", "postgres"),
            "HOST": os.environ.get("MF_DB_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MF_DB_PORT", "5432"),
            "CONN_MAX_AGE": int(os.environ.get("MF_CONN_MAX_AGE", "0")),
        }
    }
elif _DB == "mariadb":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": _DB_NAME or "test",
            "USER": os.environ.get("MF_DB_USER", "root"),
            "HOST": os.environ.get("MF_DB_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MF_DB_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    }
elif _DB == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _DB_NAME or str(BASE_DIR.parent / "demo.sqlite3"),
        }
    }
else:
    raise RuntimeError(f"MF_DB must be sqlite, postgres or mariadb, not {_DB!r}")

CACHES: dict[str, dict[str, Any]] = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if os.environ.get("MF_WAFFLE_CACHE") == "redis":
    CACHES["waffle"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("MF_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "KEY_PREFIX": os.environ.get("MF_REDIS_PREFIX", "mf"),
    }
    WAFFLE_CACHE_NAME = "waffle"
if "MF_STATE_CACHE_URL" in os.environ:  # the fleet tier: the state shared through Redis
    CACHES["state"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["MF_STATE_CACHE_URL"],
        "KEY_PREFIX": os.environ.get("MF_STATE_CACHE_PREFIX", "mf-state"),
        # A cache that does not answer costs a refresh at most this long per call.
        "OPTIONS": {"socket_timeout": 0.1, "socket_connect_timeout": 0.1},
    }
    MAINTENANCE_STATE_CACHE = "state"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français"), ("de", "Deutsch"), ("es", "Español")]
USE_I18N = True
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if "MF_STATE_TTL" in os.environ:
    MAINTENANCE_STATE_TTL = float(os.environ["MF_STATE_TTL"])
if "MF_FAIL_MODE" in os.environ:
    MAINTENANCE_FAIL_MODE = os.environ["MF_FAIL_MODE"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # INFO: the Celery guard's pause and resume lines; not propagated (Celery's root handler would repeat them)
    "loggers": {"maintenance_flags": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# Celery (testproject/celery_app.py): the demo's worker and the background-work tests.
CELERY_BROKER_URL = os.environ.get("MF_CELERY_BROKER", "redis://127.0.0.1:6379/0")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("MF_CELERY_QUEUE", "celery")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
