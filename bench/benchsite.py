"""The benchmark site in one module: settings, URLs, views and the naive waffle middleware. Environment (set
by the harness): ``BENCH_KIND`` baseline | mf | waffle | mm | mm2; ``BENCH_DB`` a SQLite file or
``postgres:<name>``; ``BENCH_WAFFLE_CACHE`` locmem | redis (keys under ``BENCH_REDIS_PREFIX``); ``BENCH_SITE_ID``;
``BENCH_MM_STATE_FILE``; ``BENCH_503_PRERENDER=1``; ``BENCH_PROJECT_TEMPLATES=0`` takes ``templates/503.html``
(which every kind renders) off the path, so maintenance_flags serves its built-in page; ``BENCH_STATE_CACHE=1``
(the fleet tier on Redis), ``BENCH_STATE_TTL``, ``BENCH_LOG_READS=1`` (a log line per database read of the
state). Importable under the peers' venvs: nothing here imports maintenance_flags or waffle."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

View = Callable[[HttpRequest], HttpResponse]

env = os.environ.get
KIND = env("BENCH_KIND", "baseline")
if KIND not in ("baseline", "mf", "waffle", "mm", "mm2"):
    raise RuntimeError(f"BENCH_KIND must be baseline, mf, waffle, mm or mm2, not {KIND!r}")

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
SITE_ID = int(env("BENCH_SITE_ID", "1"))
ROOT_URLCONF = "benchsite"
INSTALLED_APPS = [f"django.contrib.{app}" for app in ("auth", "contenttypes", "sessions", "messages", "sites")]
# The typical stack: security, sessions, common, CSRF, auth, messages.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware", "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware", "django.contrib.messages.middleware.MessageMiddleware",
]  # fmt: skip
CONTEXT_PROCESSORS = ["django.template.context_processors.request", "django.contrib.auth.context_processors.auth",
                      "django.contrib.messages.context_processors.messages"]  # fmt: skip
if KIND == "mf":
    INSTALLED_APPS += ["waffle", "maintenance_flags"]
    MIDDLEWARE += ["maintenance_flags.middleware.MaintenanceModeMiddleware"]
    CONTEXT_PROCESSORS += ["maintenance_flags.context_processors.maintenance"]
    MAINTENANCE_503_PRERENDER = env("BENCH_503_PRERENDER") == "1"
elif KIND == "waffle":
    INSTALLED_APPS += ["waffle"]
    MIDDLEWARE += ["benchsite.NaiveWaffleMaintenanceMiddleware"]
elif KIND == "mm":  # django-maintenance-mode, default (local file) backend
    INSTALLED_APPS += ["maintenance_mode"]
    MIDDLEWARE += ["maintenance_mode.middleware.MaintenanceModeMiddleware"]
    MAINTENANCE_MODE_STATE_FILE_PATH = env("BENCH_MM_STATE_FILE", "/tmp/mfbench-mm-state.txt")
    MAINTENANCE_MODE_IGNORE_STAFF = MAINTENANCE_MODE_IGNORE_SUPERUSER = True  # staff through, as the others
elif KIND == "mm2":  # django-maintenancemode-2
    INSTALLED_APPS += ["maintenancemode"]
    MIDDLEWARE += ["maintenancemode.middleware.MaintenanceModeMiddleware"]

_DIRS = [Path(__file__).resolve().parent / "templates"] if env("BENCH_PROJECT_TEMPLATES", "1") == "1" else []
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": _DIRS, "APP_DIRS": True,
              "OPTIONS": {"context_processors": CONTEXT_PROCESSORS}}]  # fmt: skip
_DB = env("BENCH_DB", str(Path(__file__).with_suffix(".sqlite3")))
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _DB}}
if _DB.startswith("postgres:"):
    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": _DB.removeprefix("postgres:"),
                             "USER": "postgres", "HOST": "127.0.0.1", "PORT": "5432", "CONN_MAX_AGE": 0}}  # fmt: skip
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if env("BENCH_WAFFLE_CACHE", "locmem") == "redis":
    CACHES["waffle"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0",
                        "KEY_PREFIX": env("BENCH_REDIS_PREFIX", "mfbench")}  # fmt: skip
    WAFFLE_CACHE_NAME = "waffle"
if env("BENCH_STATE_CACHE") == "1":  # the fleet tier: the state shared through Redis
    CACHES["state"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0",
                       "KEY_PREFIX": env("BENCH_REDIS_PREFIX", "mfbench") + "-state",
                       "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.1}}  # fmt: skip
    MAINTENANCE_STATE_CACHE = "state"
if env("BENCH_STATE_TTL"):
    MAINTENANCE_STATE_TTL = float(env("BENCH_STATE_TTL", "2"))
if env("BENCH_LOG_READS") == "1":  # one line per read of the state from the database
    LOGGING = {"version": 1, "disable_existing_loggers": False,
               "handlers": {"console": {"class": "logging.StreamHandler"}},
               "loggers": {"maintenance_flags": {"handlers": ["console"], "level": "DEBUG"}}}  # fmt: skip
USE_TZ, TIME_ZONE, LANGUAGE_CODE, USE_I18N = True, "UTC", "en", True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


async def async_index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [path("", index), path("async/", async_index)]


def NaiveWaffleMaintenanceMiddleware(get_response: View) -> View:
    """The naive way to do maintenance with waffle: one ``switch_is_active`` call per request."""

    def middleware(request: HttpRequest) -> HttpResponse:
        import waffle

        if waffle.switch_is_active("maintenance_mode"):
            return render(request, "503.html", status=503)
        return get_response(request)

    return middleware
