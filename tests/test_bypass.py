"""Bypass links and headers: signed, expiring, revocable; no open redirect."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from asgiref.sync import async_to_sync
from django.core import signing
from django.core.management import CommandError, call_command
from django.test import AsyncClient, Client, override_settings

from maintenance_flags import bypass
from maintenance_flags.models import BypassToken
from maintenance_flags.state import store
from tests.conftest import turn

pytestmark = pytest.mark.django_db


def issue(*args: str) -> str:
    out = StringIO()
    call_command("setmaintenance", "bypass", *args, stdout=out, stderr=StringIO())
    url = out.getvalue().strip()
    return parse_qs(urlsplit(url).query)["maintenance_bypass"][0]


def test_command_prints_a_link() -> None:
    out = StringIO()
    call_command("setmaintenance", "bypass", "--label", "qa", stdout=out, stderr=StringIO())
    url = out.getvalue().strip()
    assert url.startswith("https://example.com/?maintenance_bypass=")
    out = StringIO()
    call_command("setmaintenance", "bypass", "--scheme", "http", stdout=out, stderr=StringIO())
    assert out.getvalue().startswith("http://example.com/?maintenance_bypass=")
    row = BypassToken.objects.get(label="qa")
    assert 59 * 60 < (row.expires_at - row.created_at).total_seconds() <= 3600


def test_link_sets_cookie_and_redirects_without_the_parameter() -> None:
    token = issue()
    turn(True)
    client = Client()
    response = client.get("/some/page/", {"a": "1", "maintenance_bypass": token, "next": "https://evil.example/"})
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("/some/page/?")
    assert "maintenance_bypass" not in location
    assert parse_qs(urlsplit(location).query) == {"a": ["1"], "next": ["https://evil.example/"]}
    cookie = response.cookies["maintenance_bypass"]
    assert cookie.value == token
    assert cookie["httponly"]
    assert 3500 < int(cookie["max-age"]) <= 3600
    assert client.get("/").status_code == 200  # the cookie lets this browser through
    assert Client().get("/").status_code == 503


@override_settings(SESSION_COOKIE_SECURE=True, SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_DOMAIN=".example.com")
def test_cookie_follows_session_cookie_settings() -> None:
    token = issue()
    cookie = Client().get("/", {"maintenance_bypass": token}).cookies["maintenance_bypass"]
    assert cookie["secure"]
    assert cookie["samesite"] == "Strict"
    assert cookie["domain"] == ".example.com"


@pytest.mark.parametrize("path", ["//evil.example/", "/\\evil.example/", "///evil.example", "/%2F%2Fevil.example/"])
def test_no_open_redirect(path: str) -> None:
    token = issue()
    response = Client().get(path, {"maintenance_bypass": token})
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("/")
    assert not location.startswith("//")
    assert "\\" not in location
    assert urlsplit(location).netloc == ""


def test_header_lets_api_clients_through(django_assert_num_queries: Any) -> None:
    token = issue()
    turn(True)
    assert Client().get("/", headers={"X-Maintenance-Bypass": token}).status_code == 200
    with django_assert_num_queries(0):  # the snapshot is fresh: checking the token costs no query
        assert Client().get("/", headers={"X-Maintenance-Bypass": token}).status_code == 200
    response = async_to_sync(AsyncClient().get)("/async/", headers={"X-Maintenance-Bypass": token})
    assert response.status_code == 200
    assert Client().get("/", headers={"X-Maintenance-Bypass": token + "x"}).status_code == 503


def test_async_link() -> None:
    token = issue()
    response = async_to_sync(AsyncClient().get)("/async/", {"maintenance_bypass": token})
    assert response.status_code == 302
    assert response["Location"] == "/async/"


def test_banner_for_bypass() -> None:
    token = issue()
    turn(True)
    html = Client().get("/", headers={"X-Maintenance-Bypass": token}).content.decode()
    assert "Maintenance mode is on" in html


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        signing.dumps({"i": 1, "e": 9999999999}, salt="another.salt"),
        signing.dumps({"i": 999, "e": 9999999999}, salt=bypass.SALT),  # no such row
        signing.dumps({"x": 1}, salt=bypass.SALT),
        signing.dumps([1, 2], salt=bypass.SALT),
        "a" * 1000,
    ],
    ids=["empty", "garbage", "other-salt", "unknown-row", "no-id", "not-a-dict", "too-long"],
)
def test_invalid_tokens_are_ignored(token: str) -> None:
    issue()
    turn(True)
    client = Client()
    assert client.get("/", {"maintenance_bypass": token}).status_code == 503
    client.cookies["maintenance_bypass"] = token
    assert client.get("/").status_code == 503


def test_tampered_token() -> None:
    token = issue()
    turn(True)
    data, _, signature = token.rpartition(":")
    assert Client().get("/", headers={"X-Maintenance-Bypass": data + ":" + signature[::-1]}).status_code == 503


def test_expired_token(monkeypatch: pytest.MonkeyPatch) -> None:
    token = issue("--minutes", "1")
    turn(True)
    assert Client().get("/", headers={"X-Maintenance-Bypass": token}).status_code == 200
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)
    assert Client().get("/", headers={"X-Maintenance-Bypass": token}).status_code == 503


def test_revoke_all_and_by_label() -> None:
    qa = issue("--label", "qa")
    ops = issue("--label", "ops")
    turn(True)
    out = StringIO()
    call_command("setmaintenance", "bypass", "--revoke", "qa", stdout=out)
    assert "Revoked 1" in out.getvalue()
    assert Client().get("/", headers={"X-Maintenance-Bypass": qa}).status_code == 503
    assert Client().get("/", headers={"X-Maintenance-Bypass": ops}).status_code == 200
    call_command("setmaintenance", "bypass", "--revoke-all", stdout=out)
    assert Client().get("/", headers={"X-Maintenance-Bypass": ops}).status_code == 503


def test_revocation_reaches_other_processes_within_the_ttl() -> None:
    token = issue()
    turn(True)
    assert Client().get("/", headers={"X-Maintenance-Bypass": token}).status_code == 200
    BypassToken.objects.update(revoked=True)  # as another process would: no signal here
    assert Client().get("/", headers={"X-Maintenance-Bypass": token}).status_code == 200  # memoised
    store.invalidate()  # = the TTL has passed
    assert Client().get("/", headers={"X-Maintenance-Bypass": token}).status_code == 503


def test_bad_minutes() -> None:
    with pytest.raises(CommandError, match="positive"):
        issue("--minutes", "0")


def test_admin_revokes(django_user_model: type) -> None:
    token = issue()
    turn(True)
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    row = BypassToken.objects.get()
    response = admin.post(
        "/admin/maintenance_flags/bypasstoken/", {"action": "revoke_tokens", "_selected_action": [row.pk]}
    )
    assert response.status_code == 302
    assert Client().get("/", headers={"X-Maintenance-Bypass": token}).status_code == 503


def test_admin_issues_a_link_shown_once(django_user_model: type) -> None:
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    add = "/admin/maintenance_flags/bypasstoken/add/"
    assert "Issue the link" in admin.get(add).content.decode()
    assert admin.post(add, {"site": "1", "minutes": "0", "label": "qa"}).status_code == 200  # a form error
    response = admin.post(add, {"site": "1", "minutes": "30", "label": "qa"}, follow=True)
    html = response.content.decode()
    match = re.search(r"http://example\.com/\?maintenance_bypass=([^<\s]+)", html)
    assert match is not None
    token = match.group(1).replace("&amp;", "&")
    row = BypassToken.objects.get(label="qa")
    assert 29 * 60 < (row.expires_at - row.created_at).total_seconds() <= 30 * 60
    turn(True)
    assert Client().get("/", headers={"X-Maintenance-Bypass": token}).status_code == 200


def test_issuing_in_the_admin_needs_the_switch_permission(django_user_model: type) -> None:
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get("/admin/maintenance_flags/bypasstoken/add/").status_code == 403
