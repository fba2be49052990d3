from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings
from django.test.utils import modify_settings

from maintenance_flags import checks
from maintenance_flags.conf import MAX_RETRY_AFTER
from tests.utils import django_templates, locmem, turn

ROOT = Path(__file__).resolve().parent.parent
MW = "maintenance_flags.middleware.MaintenanceModeMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"


def ids(messages: list) -> list[str]:  # type: ignore[type-arg]
    return [m.id for m in messages]


def run_check() -> str:
    """`manage.py check`; other apps' complaints about test settings don't fail it."""
    out = StringIO()
    call_command("check", fail_level="CRITICAL", stdout=out, stderr=out)
    return out.getvalue()


def test_default_settings_are_clean() -> None:
    assert "no issues" in run_check()


@override_settings(MIDDLEWARE=[MW, "django.contrib.sessions.middleware.SessionMiddleware", AUTH])
def test_e001_middleware_before_auth() -> None:
    assert ids(checks.check_middleware()) == ["maintenance_flags.E001"]
    assert "maintenance_flags.E001" in run_check()
    with pytest.raises(SystemCheckError, match="E001"):
        call_command("check", stdout=StringIO(), stderr=StringIO())


@override_settings(MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware", AUTH])
def test_w001_middleware_missing() -> None:
    assert ids(checks.check_middleware()) == ["maintenance_flags.W001"]
    assert "maintenance_flags.W001" in run_check()


@override_settings(MIDDLEWARE=[MW])
def test_no_auth_middleware_is_not_e001() -> None:
    assert checks.check_middleware() == []


@modify_settings(INSTALLED_APPS={"remove": ["django.contrib.sites"]})
def test_e002_sites_missing() -> None:
    assert ids(checks.check_installed_apps()) == ["maintenance_flags.E002"]


@modify_settings(INSTALLED_APPS={"remove": ["waffle"]})
def test_e003_waffle_missing() -> None:
    assert ids(checks.check_installed_apps()) == ["maintenance_flags.E003"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"MAINTENANCE_FAIL_MODE": "sometimes"},
        {"MAINTENANCE_ALLOWED_IPS": ["10.0.0.300"]},
        {"MAINTENANCE_ALLOWED_IPS": "10.0.0.1"},
        {"MAINTENANCE_ALLOWED_IPS": 5},
        {"MAINTENANCE_TRUSTED_PROXIES": ["not-an-ip"]},
        {"INTERNAL_IPS": ["127.0.0.1:80"]},
        {"MAINTENANCE_STATE_TTL": -1},
        {"MAINTENANCE_STATE_TTL": "2"},
        {"MAINTENANCE_STATE_TTL": True},
        {"MAINTENANCE_RETRY_AFTER": 1.5},
        {"MAINTENANCE_RETRY_AFTER": MAX_RETRY_AFTER + 1},
        {"MAINTENANCE_RETRY_AFTER": 10**12},
        {"MAINTENANCE_RETRY_AFTER": 2**63},
        {"MAINTENANCE_RETRY_AFTER": float("inf")},
        {"MAINTENANCE_ALLOWED_IPS": ["fe80::1%eth0"]},
        {"INTERNAL_IPS": ["fe80::1%eth0"]},
        {"MAINTENANCE_TRUSTED_PROXIES": ["fe80::1%eth0/64"]},
        {"MAINTENANCE_BLOCK_STAFF": "yes"},
        {"MAINTENANCE_503_PRERENDER": 1},
        {"MAINTENANCE_ADMIN_IGNORED_URLS": "^admin"},
        {"MAINTENANCE_ADMIN_IGNORED_URLS": ["(unclosed"]},
        {"MAINTENANCE_503_TEMPLATE": 503},
        {"MAINTENANCE_HEALTH_CHECK_URLS": ["(bad"]},
        {"MAINTENANCE_HEALTH_CHECK_URLS": 1},
        {"MAINTENANCE_IGNORED_URL_NAMES": "api:*"},
        {"MAINTENANCE_IGNORED_URL_NAMES": [1]},
        {"MAINTENANCE_ANNOUNCE_BEFORE": -5},
        {"MAINTENANCE_CELERY_EXEMPT_QUEUES": "emails"},
        {"MAINTENANCE_CELERY_EXEMPT_QUEUES": ["emails", 3]},
        {"MAINTENANCE_CELERY_BEAT_ALLOWED": "app.tasks.ping"},
        {"MAINTENANCE_CELERY_BEAT_ALLOWED": None},
        {"MAINTENANCE_STATE_CACHE": "no-such-cache"},
        {"MAINTENANCE_STATE_CACHE": ["default"]},
    ],
)
def test_e004_bad_settings(overrides: dict[str, object]) -> None:
    with override_settings(**overrides):
        assert ids(checks.check_settings()) == ["maintenance_flags.E004"]
        with pytest.raises(SystemCheckError, match="E004"):
            call_command("check", stdout=StringIO(), stderr=StringIO())


@override_settings(
    MAINTENANCE_ALLOWED_IPS=["10.0.0.1/8", "2001:db8::/32", "::1"],
    MAINTENANCE_TRUSTED_PROXIES=["192.168.0.0/16"],
    MAINTENANCE_STATE_TTL=0,
    MAINTENANCE_RETRY_AFTER=60,
    MAINTENANCE_FAIL_MODE="open",
    MAINTENANCE_BLOCK_STAFF=True,
    MAINTENANCE_IGNORED_URL_NAMES=["api:*", "healthz"],
    MAINTENANCE_HEALTH_CHECK_URLS=["^status$"],
    MAINTENANCE_ANNOUNCE_BEFORE=3600,
    MAINTENANCE_STATE_CACHE="default",
)
def test_good_settings_pass() -> None:
    assert checks.check_settings() == []


@override_settings(MAINTENANCE_RETRY_AFTER=MAX_RETRY_AFTER)
def test_retry_after_of_a_year_is_allowed() -> None:
    assert MAX_RETRY_AFTER == 365 * 86400
    assert checks.check_settings() == []


def test_e004_says_why_a_zone_id_is_refused() -> None:
    with override_settings(MAINTENANCE_ALLOWED_IPS=["fe80::1%eth0", "bad"]):
        errors = checks.check_settings()
    assert ids(errors) == ["maintenance_flags.E004", "maintenance_flags.E004"]
    assert "'bad'" in errors[0].msg
    assert "zone" in errors[1].msg and "'fe80::1%eth0'" in errors[1].msg
    assert "fe80::1" in str(errors[1].hint)


@pytest.mark.django_db
@pytest.mark.parametrize("setting", ["INTERNAL_IPS", "MAINTENANCE_ALLOWED_IPS"])
@pytest.mark.parametrize("remote", ["fe80::1%eth1", "fe80::1", "fe80::1%eth0"])
def test_an_allowed_address_with_a_zone_id_is_never_matched(setting: str, remote: str) -> None:
    """Refused by E004, the entry is ignored: it lets no one through, from whatever zone."""
    turn(True)
    with override_settings(**{setting: ["fe80::1%eth0"]}):
        assert Client().get("/", REMOTE_ADDR=remote).status_code == 503


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("settings", "allowed"),
    [
        ({"MAINTENANCE_ALLOWED_IPS": ["fe80::/64"]}, True),
        ({"INTERNAL_IPS": ["fe80::1"]}, True),  # an address without a zone id matches in every zone
        ({"MAINTENANCE_ALLOWED_IPS": ["2001:db8::1"]}, False),
        ({"MAINTENANCE_ALLOWED_IPS": ["fe80::2%eth0"]}, False),
        ({"MAINTENANCE_ALLOWED_IPS": ["203.0.113.5"], "MAINTENANCE_TRUSTED_PROXIES": ["fe80::/64"]}, True),
    ],
)
def test_a_remote_addr_with_a_zone_id(settings: dict[str, list[str]], allowed: bool) -> None:
    turn(True)
    with override_settings(**settings):
        response = Client().get("/", REMOTE_ADDR="fe80::1%eth0", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert response.status_code == (200 if allowed else 503)


def test_e004_lists_every_bad_entry() -> None:
    with override_settings(MAINTENANCE_ALLOWED_IPS=["bad1", "10.0.0.1", "bad2"]):
        (error,) = checks.check_settings()
    assert isinstance(error, Error)
    assert "'bad1'" in error.msg
    assert "'bad2'" in error.msg


@override_settings(
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True, "OPTIONS": {}}]
)
def test_w002_request_context_processor_missing() -> None:
    (warning,) = checks.check_request_context_processor()
    assert isinstance(warning, Warning)
    assert warning.id == "maintenance_flags.W002"
    assert "maintenance_flags.W002" in run_check()


@override_settings(
    TEMPLATES=[
        {"BACKEND": "django.template.backends.jinja2.Jinja2", "OPTIONS": {}},
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
        },
    ]
)
def test_w002_other_engines_are_ignored() -> None:
    assert checks.check_request_context_processor() == []


SETTINGS_WITHOUT = """
SECRET_KEY = "x"
INSTALLED_APPS = [
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.admin",
    "django.contrib.sessions", "django.contrib.messages", {apps} "maintenance_flags",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "maintenance_flags.middleware.MaintenanceModeMiddleware",
]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
ROOT_URLCONF = "missing_urls"
"""


@pytest.mark.servers  # starts a manage.py process
@pytest.mark.parametrize(
    ("apps", "check_id"),
    [('"waffle",', "maintenance_flags.E002"), ('"django.contrib.sites",', "maintenance_flags.E003")],
    ids=["without-sites", "without-waffle"],
)
def test_missing_apps_are_reported_not_a_traceback(tmp_path: Path, apps: str, check_id: str) -> None:
    """A project that forgot an app gets the check's message from `manage.py check`, never a traceback."""
    (tmp_path / "missing_settings.py").write_text(SETTINGS_WITHOUT.format(apps=apps))
    (tmp_path / "missing_urls.py").write_text("urlpatterns = []\n")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "missing_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "django", "check"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert check_id in output
    assert "Traceback" not in output


PERSONAL_PAGES = {
    "503.html": (
        '{% extends "base.html" %}{% load i18n %}{% block body %}{% translate "request" %} {{ message }}{% endblock %}'
    ),
    "base.html": '{% include "nav.html" %}{% include "missing.html" %}{% block body %}{% endblock %}',
    "nav.html": (
        '<form>{% csrf_token %}</form>{% if user.is_authenticated %}{{ user }}{% endif %}{% include "nav.html" %}'
    ),
}


@override_settings(MAINTENANCE_503_PRERENDER=True, TEMPLATES=django_templates(locmem(PERSONAL_PAGES)))
def test_w003_prerendered_page_uses_the_visitor() -> None:
    (warning,) = checks.check_prerendered_page()
    assert isinstance(warning, Warning)
    assert warning.id == "maintenance_flags.W003"
    assert "'503.html' uses user, {% csrf_token %}" in warning.msg  # not "request": a quoted string
    assert "maintenance_flags.W003" in run_check()


@override_settings(MAINTENANCE_503_PRERENDER=False, TEMPLATES=django_templates(locmem(PERSONAL_PAGES)))
def test_w003_only_when_prerendering() -> None:
    assert checks.check_prerendered_page() == []


@override_settings(MAINTENANCE_503_PRERENDER=True)
def test_w003_quiet_for_a_page_that_shows_nothing_personal() -> None:
    assert checks.check_prerendered_page() == []  # testproject's 503.html includes the built-in page


@override_settings(
    MAINTENANCE_503_PRERENDER=True,
    MAINTENANCE_503_TEMPLATE="nowhere.html",
    TEMPLATES=django_templates(locmem({})),
)
def test_w003_quiet_without_a_template() -> None:
    assert checks.check_prerendered_page() == []


@pytest.mark.parametrize(
    "page",
    ["{{ request.path }}", "{{ perms.auth }}", "{% for m in messages %}{{ m }}{% endfor %}", "{% csrf_token %}"],
)
def test_w003_names(page: str) -> None:
    with override_settings(MAINTENANCE_503_PRERENDER=True, TEMPLATES=django_templates(locmem({"503.html": page}))):
        (warning,) = checks.check_prerendered_page()
    assert warning.id == "maintenance_flags.W003"


@pytest.mark.parametrize(
    ("setting", "allowed", "proxies", "overlap"),
    [
        ("INTERNAL_IPS", ["127.0.0.1"], ["127.0.0.1"], "127.0.0.1/32"),
        ("MAINTENANCE_ALLOWED_IPS", ["10.0.0.0/8"], ["192.0.2.1", "10.1.2.3"], "10.1.2.3/32"),
        ("MAINTENANCE_ALLOWED_IPS", ["10.1.2.3"], ["10.0.0.0/8"], "10.1.2.3/32"),
        ("MAINTENANCE_ALLOWED_IPS", ["::ffff:10.1.2.3"], ["10.0.0.0/8"], "10.1.2.3/32"),
        ("INTERNAL_IPS", ["2001:db8::/32"], ["2001:db8:1::/48"], "2001:db8:1::/48"),
    ],
)
def test_w004_a_trusted_proxy_is_also_allowed(
    setting: str, allowed: list[str], proxies: list[str], overlap: str
) -> None:
    with override_settings(**{setting: allowed, "MAINTENANCE_TRUSTED_PROXIES": proxies}):
        (warning,) = checks.check_trusted_proxies()
        assert "maintenance_flags.W004" in run_check()
    assert isinstance(warning, Warning)
    assert warning.id == "maintenance_flags.W004"
    assert f"MAINTENANCE_TRUSTED_PROXIES overlaps {setting} ({overlap})" in warning.msg
    assert "X-Forwarded-For" in warning.msg
    assert setting in str(warning.hint)


@override_settings(
    INTERNAL_IPS=["10.0.0.1"], MAINTENANCE_ALLOWED_IPS=["10.0.0.0/24"], MAINTENANCE_TRUSTED_PROXIES=["10.0.0.0/30"]
)
def test_w004_one_warning_per_allow_list() -> None:
    assert ids(checks.check_trusted_proxies()) == ["maintenance_flags.W004", "maintenance_flags.W004"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"INTERNAL_IPS": ["127.0.0.1"], "MAINTENANCE_TRUSTED_PROXIES": []},
        {"INTERNAL_IPS": ["127.0.0.1"], "MAINTENANCE_TRUSTED_PROXIES": ["10.0.0.0/8", "::1"]},
        {"MAINTENANCE_ALLOWED_IPS": ["::ffff:0:0/96"], "MAINTENANCE_TRUSTED_PROXIES": ["::/1"]},  # IPv4 vs IPv6
        {"MAINTENANCE_ALLOWED_IPS": "10.0.0.1", "MAINTENANCE_TRUSTED_PROXIES": ["10.0.0.0/8"]},  # E004's business
        {"MAINTENANCE_ALLOWED_IPS": ["10.0.0.1"], "MAINTENANCE_TRUSTED_PROXIES": 5},
        {"MAINTENANCE_ALLOWED_IPS": ["bad", "fe80::1%eth0"], "MAINTENANCE_TRUSTED_PROXIES": ["fe80::/64"]},
    ],
)
def test_no_w004_without_an_overlap(overrides: dict[str, object]) -> None:
    with override_settings(**overrides):
        assert checks.check_trusted_proxies() == []


@pytest.mark.django_db
@override_settings(INTERNAL_IPS=["10.0.0.2"], MAINTENANCE_TRUSTED_PROXIES=["10.0.0.2"])
def test_w004_is_about_a_real_bypass() -> None:
    """What W004 warns about: a proxy that sends no usable hop makes its visitors the proxy."""
    turn(True)
    assert Client().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5:4711").status_code == 200
