"""What django-maintenance-mode and Laravel's ``down`` offer: redirect, auto-refresh, status code,
sign-out — on the sync and the ASGI path alike."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.http import HttpResponse
from django.test import AsyncClient, Client, override_settings

from maintenance_flags.checks import check_settings
from maintenance_flags.names import ALL_SITES_SWITCH, site_switch_name
from maintenance_flags.switches import set_switch
from tests.utils import turn

pytestmark = pytest.mark.django_db

CLIENTS = [pytest.param(Client, id="wsgi"), pytest.param(AsyncClient, id="asgi")]
JSON = {"Accept": "application/json"}
SESSION_USER = "_auth_user_id"


def request(client: Client | AsyncClient, method: str, path: str, **headers: str) -> HttpResponse:
    call = getattr(client, method)
    if isinstance(client, AsyncClient):
        return async_to_sync(call)(path, headers=headers)  # type: ignore[no-any-return]
    return call(path, headers=headers)  # type: ignore[no-any-return]


# --- redirect ------------------------------------------------------------------------------------


@override_settings(MAINTENANCE_REDIRECT_URL="/ignored-page/")
@pytest.mark.parametrize("client_class", CLIENTS)
def test_a_blocked_browser_is_redirected_and_the_target_is_served(client_class: type) -> None:
    turn(True)
    client = client_class()
    for method in ("get", "head"):
        response = request(client, method, "/")
        assert response.status_code == 302
        assert response["Location"] == "/ignored-page/"
        assert response["Cache-Control"] == "no-store"
        assert response["X-Maintenance-Mode"] == "on"
    assert request(client, "get", "/ignored-page/").status_code == 200  # the target: no loop


@override_settings(MAINTENANCE_REDIRECT_URL="/status/")
@pytest.mark.parametrize("client_class", CLIENTS)
def test_json_clients_and_unsafe_methods_keep_the_maintenance_response(client_class: type) -> None:
    turn(True)
    client = client_class()
    response = request(client, "get", "/", **JSON)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert request(client, "post", "/").status_code == 503
    assert request(client, "get", "/status/").status_code == 404  # the target is exempt: served


def test_a_site_redirect_wins_over_the_setting() -> None:
    set_switch(site_switch_name(1), True, redirect_url="https://status.example.org/incident")
    with override_settings(MAINTENANCE_REDIRECT_URL="/elsewhere/"):
        response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "https://status.example.org/incident"  # another host: allowed
    assert Client().get("/incident").status_code == 302  # its path on this host is not exempt


def test_a_global_redirect_applies_to_every_site() -> None:
    set_switch(ALL_SITES_SWITCH, True, redirect_url="/ignored-page/")
    assert Client().get("/").status_code == 302


@override_settings(MAINTENANCE_REDIRECT_URL="https://testserver/ignored-page/")
def test_an_absolute_target_on_this_host_is_exempt_too() -> None:
    turn(True)
    assert Client().get("/").status_code == 302
    assert Client().get("/ignored-page/").status_code == 200


def test_the_redirect_never_comes_from_the_request() -> None:
    turn(True)
    response = Client().get("/?next=https://evil.example/", headers={"Referer": "https://evil.example/"})
    assert response.status_code == 503


# --- refresh ------------------------------------------------------------------------------------


@override_settings(MAINTENANCE_REFRESH=30)
@pytest.mark.parametrize("client_class", CLIENTS)
def test_refresh_header_and_the_page_says_it_reloads(client_class: type) -> None:
    turn(True)
    response = request(client_class(), "get", "/")
    assert response.status_code == 503
    assert response["Refresh"] == "30"
    assert "reloads itself every 30 seconds" in response.content.decode()
    assert request(client_class(), "get", "/", **JSON)["Refresh"] == "30"


def test_a_site_refresh_wins_over_the_setting() -> None:
    set_switch(site_switch_name(1), True, refresh=5)
    with override_settings(MAINTENANCE_REFRESH=60):
        assert Client().get("/")["Refresh"] == "5"


def test_no_refresh_by_default() -> None:
    turn(True)
    response = Client().get("/")
    assert "Refresh" not in response
    assert "reloads itself" not in response.content.decode()


# --- status code --------------------------------------------------------------------------------


@override_settings(MAINTENANCE_STATUS_CODE=429)
@pytest.mark.parametrize("client_class", CLIENTS)
def test_status_code_in_html_and_json_with_the_same_headers(client_class: type) -> None:
    turn(True)
    html = request(client_class(), "get", "/")
    problem = request(client_class(), "get", "/", **JSON)
    for response in (html, problem):
        assert response.status_code == 429
        assert response["Retry-After"] == "3600"
        assert response["X-Maintenance-Mode"] == "on"
        assert response["Cache-Control"] == "no-store"
    body = json.loads(problem.content)
    assert body["status"] == 429
    assert body["title"] == "Too Many Requests"


@override_settings(MAINTENANCE_STATUS_CODE=599)
def test_a_status_code_without_a_standard_phrase() -> None:
    turn(True)
    assert json.loads(Client().get("/", headers=JSON).content)["title"] == "Down for maintenance"


# --- sign-out -----------------------------------------------------------------------------------


@pytest.mark.parametrize("client_class", CLIENTS)
@pytest.mark.parametrize("redirect", [None, "/ignored-page/"])
def test_a_signed_in_user_who_is_not_let_through_is_signed_out(
    django_user_model: Any, client_class: type, redirect: str | None
) -> None:
    user = django_user_model.objects.create_user("visitor", password="pw")
    client = client_class()
    if isinstance(client, AsyncClient):
        async_to_sync(client.aforce_login)(user)
    else:
        client.force_login(user)
    turn(True)
    with override_settings(MAINTENANCE_LOGOUT_USERS=True, MAINTENANCE_REDIRECT_URL=redirect):
        assert request(client, "get", "/").status_code in (302, 503)
    assert SESSION_USER not in client.session  # the session was flushed


def test_without_the_setting_users_stay_signed_in(django_user_model: Any) -> None:
    user = django_user_model.objects.create_user("visitor", password="pw")
    client = Client()
    client.force_login(user)
    turn(True)
    assert client.get("/").status_code == 503
    assert client.session[SESSION_USER] == str(user.pk)


@override_settings(MAINTENANCE_LOGOUT_USERS=True)
def test_staff_let_through_are_not_signed_out(staff_client: Client) -> None:
    turn(True)
    assert staff_client.get("/").status_code == 200
    assert SESSION_USER in staff_client.session


# --- checks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAINTENANCE_STATUS_CODE", 200),
        ("MAINTENANCE_STATUS_CODE", 600),
        ("MAINTENANCE_STATUS_CODE", "503"),
        ("MAINTENANCE_REFRESH", 0),
        ("MAINTENANCE_REFRESH", 86401),
        ("MAINTENANCE_REFRESH", 1.5),
        ("MAINTENANCE_REDIRECT_URL", "status/"),
        ("MAINTENANCE_REDIRECT_URL", "//evil.example/"),
        ("MAINTENANCE_REDIRECT_URL", "javascript:alert(1)"),
        ("MAINTENANCE_REDIRECT_URL", 3),
        ("MAINTENANCE_LOGOUT_USERS", "yes"),
    ],
)
def test_wrong_values_are_e004(name: str, value: Any) -> None:
    with override_settings(**{name: value}):
        assert [e.id for e in check_settings() if name in e.msg] == ["maintenance_flags.E004"]
        with pytest.raises(Exception, match=name):
            call_command("check")
        turn(True)
        response = Client().get("/")
    assert response.status_code == 503  # a wrong value falls back to the default, never a 500
    assert "Refresh" not in response


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAINTENANCE_STATUS_CODE", 400),
        ("MAINTENANCE_STATUS_CODE", 599),
        ("MAINTENANCE_REFRESH", 86400),
        ("MAINTENANCE_REFRESH", None),
        ("MAINTENANCE_REDIRECT_URL", "/status/"),
        ("MAINTENANCE_REDIRECT_URL", "https://status.example.org/"),
        ("MAINTENANCE_REDIRECT_URL", None),
        ("MAINTENANCE_LOGOUT_USERS", True),
    ],
)
def test_right_values_pass(name: str, value: Any) -> None:
    with override_settings(**{name: value}):
        assert [e for e in check_settings() if name in e.msg] == []


def test_a_bad_target_saved_past_validation_is_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    from maintenance_flags.models import SwitchDetail

    set_switch(site_switch_name(1), True, redirect_url="/ignored-page/")
    SwitchDetail.objects.filter(switch_name=site_switch_name(1)).update(redirect_url="javascript:alert(1)")
    assert Client().get("/").status_code == 503  # never a 500
    assert "Ignoring the redirect target" in caplog.text


@override_settings(MAINTENANCE_LOGOUT_USERS=True)
@pytest.mark.parametrize("client_class", CLIENTS)
def test_anonymous_visitors_have_nothing_to_sign_out_of(client_class: type) -> None:
    turn(True)
    client = client_class()
    client.cookies["sessionid"] = "x" * 32  # a session cookie with no user behind it
    assert request(client, "get", "/").status_code == 503


def test_a_bad_redirect_target_is_refused_by_validation() -> None:
    from django.core.exceptions import ValidationError

    from maintenance_flags.models import SwitchDetail

    with pytest.raises(ValidationError, match="absolute http"):
        SwitchDetail(switch_name=site_switch_name(1), redirect_url="status/").full_clean()


def test_a_good_redirect_target_passes_validation() -> None:
    from maintenance_flags.models import SwitchDetail

    SwitchDetail(switch_name=site_switch_name(1), redirect_url="/status/").full_clean()
