"""Settings for the benchmark site. Everything is chosen by environment variables:

``BENCH_KIND``   baseline | mf | waffle | mm | mm2 (which maintenance middleware, if any)
``BENCH_DB``     a SQLite file path, or ``postgres:<dbname>``
``BENCH_WAFFLE_CACHE`` locmem (default) | redis; ``BENCH_REDIS_PREFIX`` the Redis key prefix
``BENCH_SITE_ID`` (default 1), ``MF_STATE_TTL``, ``BENCH_MM_STATE_FILE`` (django-maintenance-mode state file),
``BENCH_503_TEMPLATE`` (maintenance_flags: ``MAINTENANCE_503_TEMPLATE``), ``BENCH_503_PRERENDER`` 1 (maintenance_flags:
``MAINTENANCE_503_PRERENDER = True``),
``BENCH_PROJECT_TEMPLATES`` 1 (default) | 0: whether the project's ``templates/`` directory (its own
``503.html``, which every kind renders) is on the template path; without it maintenance_flags finds no
project ``503.html`` and serves its built-in page.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
KIND = os.environ.get("BENCH_KIND", "baseline")
if KIND not in ("baseline", "mf", "waffle", "mm", "mm2"):
    raise RuntimeError(f"BENCH_KIND must be baseline, mf, waffle, mm or mm2, not {KIND!r}")

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INTERNAL_IPS: list[str] = []
SITE_ID = int(os.environ.get("BENCH_SITE_ID", "1"))

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sites",
]

# The typical stack: security, sessions, common, CSRF, auth, messages.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

CONTEXT_PROCESSORS = [
    "django.template.context_processors.request",
    "django.contrib.auth.context_processors.auth",
    "django.contrib.messages.context_processors.messages",
]

if KIND == "mf":
    INSTALLED_APPS += ["waffle", "maintenance_flags"]
    MIDDLEWARE += ["maintenance_flags.middleware.MaintenanceModeMiddleware"]
    CONTEXT_PROCESSORS += ["maintenance_flags.context_processors.maintenance"]
    if "MF_STATE_TTL" in os.environ:
        MAINTENANCE_STATE_TTL = float(os.environ["MF_STATE_TTL"])
    if os.environ.get("BENCH_503_PRERENDER") == "1":
        MAINTENANCE_503_PRERENDER = True
    if os.environ.get("BENCH_503_TEMPLATE"):
        MAINTENANCE_503_TEMPLATE = os.environ["BENCH_503_TEMPLATE"]
elif KIND == "waffle":
    INSTALLED_APPS += ["waffle"]
    MIDDLEWARE += ["benchsite.middleware.NaiveWaffleMaintenanceMiddleware"]
elif KIND == "mm":  # django-maintenance-mode, default (local file) backend
    INSTALLED_APPS += ["maintenance_mode"]
    MIDDLEWARE += ["maintenance_mode.middleware.MaintenanceModeMiddleware"]
    MAINTENANCE_MODE_STATE_FILE_PATH = os.environ.get(
        "BENCH_MM_STATE_FILE", str(BASE_DIR / "maintenance_mode_state.txt")
    )
    MAINTENANCE_MODE_IGNORE_STAFF = True  # let staff through, like the other apps
    MAINTENANCE_MODE_IGNORE_SUPERUSER = True
elif KIND == "mm2":  # django-maintenancemode-2
    INSTALLED_APPS += ["maintenancemode"]
    MIDDLEWARE += ["maintenancemode.middleware.MaintenanceModeMiddleware"]

ROOT_URLCONF = "benchsite.urls"
WSGI_APPLICATION = "benchsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"] if os.environ.get("BENCH_PROJECT_TEMPLATES", "1") == "1" else [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": CONTEXT_PROCESSORS},
    }
]

_DB = os.environ.get("BENCH_DB", str(BASE_DIR / "bench.sqlite3"))
if _DB.startswith("postgres:"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _DB.removeprefix("postgres:"),
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
            "CONN_MAX_AGE": 0,
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _DB}}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if os.environ.get("BENCH_WAFFLE_CACHE", "locmem") == "redis":
    CACHES["waffle"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "KEY_PREFIX": os.environ.get("BENCH_REDIS_PREFIX", "mfbench"),
    }
    WAFFLE_CACHE_NAME = "waffle"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
USE_I18N = True
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
