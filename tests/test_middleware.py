from __future__ import annotations

import json
import logging
import time
from typing import Any, cast

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.contrib.sites.models import Site
from django.db import connection
from django.http import HttpResponse
from django.test import AsyncClient, Client, override_settings
from django.test.utils import CaptureQueriesContext
from waffle.models import Switch

from maintenance_flags.models import IgnoredURL
from maintenance_flags.store import store
from tests.utils import APP_TEMPLATES, BUILTIN_ONLY, django_templates, locmem, turn

pytestmark = pytest.mark.django_db

# Every behaviour is checked through the sync view "/" and the async view "/async/".
PATHS = ["/", "/async/"]


def aget(path: str, client: AsyncClient | None = None, **extra: Any) -> HttpResponse:
    """A request through the ASGI handler (Django's async stack), from a sync test."""
    return cast("HttpResponse", async_to_sync((client or AsyncClient()).get)(path, **extra))


def get(client: Client, path: str, **extra: Any) -> int:
    return client.get(path, **extra).status_code


@pytest.mark.parametrize("path", PATHS)
def test_off_serves_normally(path: str) -> None:
    assert get(Client(), path) == 200


@pytest.mark.parametrize("path", PATHS)
def test_site_switch_gives_503_with_headers(path: str) -> None:
    turn(True)
    response = Client().get(path)
    assert response.status_code == 503
    assert response["Retry-After"] == "3600"
    assert response["Cache-Control"] == "no-store"
    assert response["X-Maintenance-Mode"] == "on"
    assert "Accept" in response["Vary"]
    assert "text/html" in response["Content-Type"]
    assert b"This site is down for maintenance. Please try again later." in response.content
    assert b"example.com" in response.content  # the site's name


@pytest.mark.parametrize("path", PATHS)
def test_async_stack_gives_503(path: str) -> None:
    turn(True)
    response = aget(path)
    assert response.status_code == 503
    assert response["X-Maintenance-Mode"] == "on"
    assert response["Retry-After"] == "3600"
    assert b"This site is down for maintenance" in response.content


@pytest.mark.parametrize("path", PATHS)
def test_async_stack_serves_when_off(path: str) -> None:
    assert aget(path).status_code == 200


def test_global_switch_applies_to_every_site() -> None:
    turn(True, site_id=None)
    assert get(Client(), "/") == 503


def test_other_sites_switch_does_not_apply() -> None:
    other = Site.objects.create(domain="other.example", name="Other")
    turn(True, site_id=other.pk)
    assert get(Client(), "/") == 200


@override_settings(MAINTENANCE_RETRY_AFTER=120)
def test_retry_after_setting() -> None:
    turn(True)
    assert Client().get("/")["Retry-After"] == "120"


# --- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "is_json"),
    [
        (None, False),
        ("*/*", False),
        ("text/html", False),
        ("application/json", True),
        ("application/problem+json", True),
        ("text/html;q=0.5, application/json", True),
        ("application/json;q=0.5, text/html", False),
        ("application/json, text/html", False),  # a tie goes to HTML
        ("text/html;q=0, application/json;q=0.1", True),
        ("application/json;q=0", False),
        ("text/*;q=0.2, application/*;q=0.9", True),
    ],
)
@pytest.mark.parametrize("path", PATHS)
def test_json_negotiation(path: str, accept: str | None, is_json: bool) -> None:
    turn(True)
    extra: dict[str, Any] = {"HTTP_ACCEPT": accept} if accept is not None else {}
    response = Client().get(path, **extra)
    assert response.status_code == 503
    assert response["X-Maintenance-Mode"] == "on"
    assert response["Retry-After"] == "3600"
    if is_json:
        assert response["Content-Type"] == "application/problem+json"
        body = json.loads(response.content)
        assert body["status"] == 503
        assert body["title"] == "Service Unavailable"
        assert body["detail"] == "This site is down for maintenance. Please try again later."
    else:
        assert response["Content-Type"].startswith("text/html")


# --- templates ----------------------------------------------------------------------------------


def test_project_503_template_is_used() -> None:
    turn(True)
    assert b"served from testproject/templates/503.html" in Client().get("/").content


@override_settings(MAINTENANCE_503_TEMPLATE="custom_503.html")
def test_configured_template_wins() -> None:
    turn(True)
    with override_settings(
        TEMPLATES=django_templates(
            locmem({"custom_503.html": "custom {{ message }}"}), "django.template.loaders.app_directories.Loader"
        )
    ):
        response = Client().get("/")
    assert response.content == b"custom This site is down for maintenance. Please try again later."


def test_builtin_template_without_project_one() -> None:
    turn(True)
    with override_settings(TEMPLATES=BUILTIN_ONLY):
        response = Client().get("/")
    assert response.status_code == 503
    assert b"served from testproject" not in response.content
    assert b"<title>Down for maintenance" in response.content


def test_broken_project_template_falls_back_to_builtin(caplog: pytest.LogCaptureFixture) -> None:
    turn(True)
    with override_settings(
        TEMPLATES=django_templates(
            locmem({"503.html": "{% broken_tag %}"}), ("django.template.loaders.filesystem.Loader", [APP_TEMPLATES])
        )
    ):
        response = Client().get("/")
    assert response.status_code == 503
    assert b"Down for maintenance" in response.content
    assert "Could not render the maintenance page" in caplog.text


# --- exemptions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/login/", "/admin/"])
def test_admin_urls_ignored_by_default(path: str) -> None:
    turn(True)
    assert get(Client(), path) in (200, 302)


@pytest.mark.parametrize("pattern", ["^ignored-page/$", "^/ignored-page/$", "/ignored-page/$"])
def test_ignored_url_rows(pattern: str) -> None:
    IgnoredURL.objects.create(pattern=pattern)
    turn(True)
    assert get(Client(), "/ignored-page/") == 200
    assert get(Client(), "/") == 503


def test_ignored_url_for_another_site_does_not_apply() -> None:
    other = Site.objects.create(domain="other.example", name="Other")
    IgnoredURL.objects.create(pattern="^ignored-page/$", site=other)
    turn(True)
    assert get(Client(), "/ignored-page/") == 503


def test_ignored_url_for_this_site_applies() -> None:
    IgnoredURL.objects.create(pattern="^ignored-page/$", site_id=1)
    turn(True)
    assert get(Client(), "/ignored-page/") == 200


@override_settings(MAINTENANCE_ADMIN_IGNORED_URLS=["^/status/"])
def test_admin_ignored_urls_setting_replaces_default() -> None:
    turn(True)
    assert get(Client(), "/admin/login/") == 503
    assert get(Client(), "/status/") == 404


def test_bad_pattern_in_database_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    IgnoredURL.objects.bulk_create([IgnoredURL(pattern="(unclosed"), IgnoredURL(pattern="^ignored-page/$")])
    turn(True)
    with caplog.at_level(logging.WARNING, logger="maintenance_flags"):
        assert get(Client(), "/ignored-page/") == 200
        assert get(Client(), "/") == 503
    assert "does not compile" in caplog.text


@pytest.mark.parametrize("path", PATHS)
def test_staff_gets_through(path: str, staff_client: Client) -> None:
    turn(True)
    assert get(staff_client, path) == 200


def test_superuser_gets_through(django_user_model: type[User]) -> None:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    turn(True)
    assert get(client, "/") == 200


def test_plain_user_is_blocked(django_user_model: type[User]) -> None:
    client = Client()
    client.force_login(django_user_model.objects.create_user("joe", password="pw"))
    turn(True)
    assert get(client, "/") == 503


@override_settings(MAINTENANCE_BLOCK_STAFF=True)
def test_block_staff_blocks_superusers_too(django_user_model: type[User], staff_client: Client) -> None:
    turn(True)
    assert get(staff_client, "/") == 503
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    assert get(client, "/") == 503


@pytest.mark.parametrize("path", PATHS)
def test_async_staff_gets_through(path: str, django_user_model: type[User]) -> None:
    user = django_user_model.objects.create(username="astaff", is_staff=True)
    client = AsyncClient()
    client.force_login(user)
    turn(True)
    assert aget(path, client).status_code == 200
    assert aget(path).status_code == 503


@pytest.mark.parametrize("path", PATHS)
def test_async_json(path: str) -> None:
    turn(True)
    response = aget(path, headers={"Accept": "application/json"})
    assert response["Content-Type"] == "application/problem+json"
    assert response.status_code == 503


@pytest.mark.parametrize(
    ("setting", "value", "remote", "allowed"),
    [
        ("INTERNAL_IPS", ["127.0.0.1"], "127.0.0.1", True),
        ("INTERNAL_IPS", ["10.0.0.0/8"], "10.1.2.3", True),
        ("INTERNAL_IPS", ["10.0.0.0/8"], "11.1.2.3", False),
        ("MAINTENANCE_ALLOWED_IPS", ["2001:db8::/32"], "2001:db8::1", True),
        ("MAINTENANCE_ALLOWED_IPS", ["2001:db8::/32"], "2001:db9::1", False),
        ("MAINTENANCE_ALLOWED_IPS", ["192.0.2.7"], "::ffff:192.0.2.7", True),
        ("MAINTENANCE_ALLOWED_IPS", ["192.0.2.0/24"], "192.0.2.200", True),
    ],
)
@pytest.mark.parametrize("path", PATHS)
def test_allowed_ips(path: str, setting: str, value: list[str], remote: str, allowed: bool) -> None:
    turn(True)
    with override_settings(**{setting: value}):
        assert get(Client(), path, REMOTE_ADDR=remote) == (200 if allowed else 503)


@override_settings(MAINTENANCE_ALLOWED_IPS=["203.0.113.5"])
def test_spoofed_forwarded_for_without_trusted_proxies_does_not_bypass() -> None:
    turn(True)
    assert get(Client(), "/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.5") == 503


@override_settings(MAINTENANCE_ALLOWED_IPS=["203.0.113.5"], MAINTENANCE_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_forwarded_for_through_trusted_proxy() -> None:
    turn(True)
    assert get(Client(), "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5") == 200
    # The client put a fake allowed address in front: the proxy appended the real one.
    assert get(Client(), "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.1") == 503


# --- logging -------------------------------------------------------------------------------------


def test_503_is_not_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    turn(True)
    with caplog.at_level(logging.DEBUG):
        assert get(Client(), "/") == 503
    assert not [r for r in caplog.records if r.name == "django.request" and r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- queries ---------------------------------------------------------------------------------------


def _queries(client: Client, path: str = "/") -> tuple[int, list[str]]:
    client.get(path)  # warm the memo (and the Site cache, the session...)
    with CaptureQueriesContext(connection) as ctx:
        status = client.get(path).status_code
    return status, [q["sql"] for q in ctx.captured_queries]


@pytest.mark.parametrize("on", [False, True])
def test_anonymous_request_costs_no_query(on: bool) -> None:
    turn(on)
    status, queries = _queries(Client())
    assert status == (503 if on else 200)
    assert queries == []


@pytest.mark.parametrize("on", [False, True])
def test_staff_request_costs_no_query_of_ours(on: bool, staff_client: Client) -> None:
    turn(on)
    status, queries = _queries(staff_client, "/async/")
    assert status == 200
    ours = [q for q in queries if "waffle" in q or "maintenance_flags" in q or "django_site" in q]
    assert ours == []
    if not on:  # we never load the user unless maintenance is on
        assert queries == []


@pytest.mark.django_db(transaction=True)  # the refresh is a background thread's: it sees what is committed
def test_state_is_reread_after_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("maintenance_flags.store.time.monotonic", lambda: clock[0])
    client = Client()
    assert get(client, "/") == 200

    Switch.objects.filter(name="maintenance_mode_site_1").update(active=True)  # no signal
    assert get(client, "/") == 200  # memoised
    clock[0] += 1.9
    assert get(client, "/") == 200
    clock[0] += 0.2
    assert get(client, "/") == 200  # the last state, at once: a background thread reads the new one
    for _ in range(500):  # (time.monotonic is the frozen clock: count real sleeps)
        if get(client, "/") == 503:
            break
        time.sleep(0.01)
    assert get(client, "/") == 503


@override_settings(MAINTENANCE_STATE_TTL=0)
def test_ttl_zero_reads_every_request() -> None:

    client = Client()
    assert get(client, "/") == 200
    Switch.objects.filter(name="maintenance_mode_site_1").update(active=True)
    assert get(client, "/") == 503


def test_local_save_is_seen_at_once() -> None:
    client = Client()
    assert get(client, "/") == 200
    turn(True)
    assert get(client, "/") == 503
    turn(False)
    assert get(client, "/") == 200


def test_store_reused_between_requests() -> None:
    client = Client()
    get(client, "/")
    first = store.fresh()
    get(client, "/")
    assert store.fresh() is first is not None


@override_settings(DEBUG=True)
def test_503_page_leaks_nothing(django_user_model: type[User], settings: Any) -> None:
    """No settings, no stack trace, no user data: not even with DEBUG on, not in JSON."""
    user = django_user_model.objects.create_user("joe.secretname", email="joe@private.example", password="pw")
    client = Client()
    client.force_login(user)
    turn(True)
    for accept in ("text/html", "application/json"):
        response = client.get("/", headers={"Accept": accept})
        assert response.status_code == 503
        body = response.content.decode()
        for secret in (settings.SECRET_KEY, "joe.secretname", "private.example", "Traceback", "DATABASES"):
            assert secret not in body
        assert "joe" not in str(response.headers).lower()


def test_anonymous_503_does_not_touch_the_session() -> None:
    turn(True)
    response = Client().get("/")
    assert response.status_code == 503
    assert "Cookie" not in response.get("Vary", "")
