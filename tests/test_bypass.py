"""Bypass links and headers: signed, expiring, revocable; no open redirect."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission, User
from django.contrib.sites.models import Site
from django.core import signing
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import AsyncClient, Client, override_settings
from django.utils import timezone

from maintenance_flags import bypass
from maintenance_flags.management.commands.setmaintenance import Command
from maintenance_flags.models import BypassToken, IgnoredURL
from maintenance_flags.store import store
from tests.utils import turn

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


@pytest.mark.parametrize("minutes", ["0", "-1", "43201", "99999999999"])
def test_bad_minutes_are_a_command_error(minutes: str) -> None:
    with pytest.raises(CommandError, match=r"--minutes must be a whole number from 1 to 43200"):
        issue("--minutes", minutes)
    assert not BypassToken.objects.exists()


def test_thirty_days_is_the_longest_link() -> None:
    issue("--minutes", "43200")
    row = BypassToken.objects.get()
    assert round((row.expires_at - row.created_at).total_seconds()) == 30 * 24 * 3600


def test_admin_revokes(django_user_model: type[User]) -> None:
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


def test_admin_issues_a_link_shown_once(django_user_model: type[User]) -> None:
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


@pytest.mark.parametrize(
    ("codenames", "status"),
    [
        ((), 403),
        (("view_switch",), 403),
        (("add_bypasstoken", "change_bypasstoken", "view_bypasstoken"), 403),  # the token's own: not enough
        (("change_switch",), 200),  # whoever may turn maintenance off may let someone through
    ],
)
def test_issuing_in_the_admin_needs_the_switch_permission(
    django_user_model: type[User], codenames: tuple[str, ...], status: int
) -> None:
    client = staff_with(django_user_model, "issuer", *codenames)
    assert client.get("/admin/maintenance_flags/bypasstoken/add/").status_code == status


# --- scope: a token opens the site it was issued for (or every site with --all) -------------------

OTHER = "other.example"
HOSTS = ["example.com", OTHER, "unknown.example"]


def link(*args: str) -> str:
    """``setmaintenance bypass *args``: the printed URL."""
    out = StringIO()
    call_command("setmaintenance", "bypass", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def other_site() -> Site:
    return Site.objects.create(domain=OTHER, name="Other")


def through(token: str, host: str = "testserver") -> dict[str, int]:
    """How a request for ``host`` fares with the token as header, cookie, link and (on the test
    client's own host, the only one AsyncClient can send) link to an async view."""
    cookie = Client(headers={"Host": host})
    cookie.cookies[bypass.COOKIE] = token
    outcome = {
        "header": Client().get("/", headers={"Host": host, "X-Maintenance-Bypass": token}).status_code,
        "cookie": cookie.get("/").status_code,
        "link": Client().get("/", {bypass.PARAM: token}, headers={"Host": host}).status_code,
    }
    if host == "testserver":
        outcome["async link"] = async_to_sync(AsyncClient().get)("/async/", {bypass.PARAM: token}).status_code
    return outcome


OPENS = {"header": 200, "cookie": 200, "link": 302}
REFUSED = {"header": 503, "cookie": 503, "link": 503}
OPENS_ASYNC_TOO = {**OPENS, "async link": 302}
REFUSED_ASYNC_TOO = {**REFUSED, "async link": 503}


def test_a_token_for_another_site_is_refused() -> None:
    other = other_site()
    token = issue(str(other.pk))
    assert BypassToken.objects.get().site == other
    turn(True)  # SITE_ID = 1
    assert through(token) == REFUSED_ASYNC_TOO
    assert through(issue("1")) == OPENS_ASYNC_TOO


@override_settings(SITE_ID=None, ALLOWED_HOSTS=HOSTS)
def test_without_site_id_the_host_picks_the_site() -> None:
    other = other_site()
    turn(True, site_id=None)
    token = issue(str(other.pk))
    assert through(token, OTHER) == OPENS
    assert through(token, "example.com") == REFUSED
    assert through(token, "unknown.example") == REFUSED  # no Site: only every-site tokens open it


@override_settings(SITE_ID=None, ALLOWED_HOSTS=HOSTS)
def test_all_issues_a_token_for_every_site() -> None:
    other_site()
    turn(True, site_id=None)
    url = link("--all")
    assert url.startswith("https://example.com/?maintenance_bypass=")  # no SITE_ID: the first Site
    assert BypassToken.objects.get().site is None
    token = parse_qs(urlsplit(url).query)[bypass.PARAM][0]
    for host in HOSTS:
        assert through(token, host) == OPENS


def test_all_links_to_site_id_s_site(settings: Any) -> None:
    settings.SITE_ID = other_site().pk
    assert link("--all").startswith(f"https://{OTHER}/?")
    settings.SITE_ID = 99  # no such Site: the first one
    assert link("--all").startswith("https://example.com/?")


def test_all_without_any_site_needs_a_host() -> None:
    Site.objects.all().delete()
    with pytest.raises(CommandError, match="--host"):
        link("--all")
    assert link("--all", "--host", "127.0.0.1:8000").startswith("https://127.0.0.1:8000/?")


@override_settings(SITE_ID=None)
def test_without_site_id_bypass_needs_an_id_or_all() -> None:
    with pytest.raises(CommandError, match="SITE_ID is not set: name a site id, or use --all"):
        link()
    assert link("--all").startswith("https://example.com/?")
    assert link("1").startswith("https://example.com/?")


def test_one_site_per_token() -> None:
    other_site()
    with pytest.raises(CommandError, match="one site id"):
        link("1", "2")
    with pytest.raises(CommandError, match="--all"):
        link("--all", "1")
    assert not BypassToken.objects.exists()


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "staging.example.com", "[::1]:8000", "localhost"])
def test_host_option(host: str) -> None:
    url = link("--host", host, "--scheme", "http")
    assert url.startswith(f"http://{host}/?maintenance_bypass=")
    assert BypassToken.objects.get().site_id == 1  # still a token for SITE_ID's site


@pytest.mark.parametrize(
    "host", ["", "https://staging.example.com", "staging.example.com/path", "a b", "host:port", "user@host", "h?x=1"]
)
def test_bad_host_is_a_command_error(host: str) -> None:
    with pytest.raises(CommandError, match="--host must be a host name"):
        link("--host", host)
    assert not BypassToken.objects.exists()


def test_help_says_where_the_link_points() -> None:
    text = " ".join(Command().create_parser("manage.py", "setmaintenance").format_help().split())
    assert "--host HOST" in text
    assert "the Site's domain" in text
    assert "at most 30 days" in text


def test_banner_only_for_a_token_that_opens_the_site() -> None:
    IgnoredURL.objects.create(pattern="^ignored-page/$")
    turn(True)
    mine, theirs = issue("1"), issue(str(other_site().pk))
    html = Client().get("/ignored-page/", headers={"X-Maintenance-Bypass": mine}).content.decode()
    assert "Maintenance mode is on" in html
    html = Client().get("/ignored-page/", headers={"X-Maintenance-Bypass": theirs}).content.decode()
    assert "Maintenance mode is on" not in html
    assert "under maintenance" in html


# --- a token never comes back: per-row secret, revocation -----------------------------------------


def test_a_reused_id_does_not_revive_old_links() -> None:
    token = issue()
    turn(True)
    row = BypassToken.objects.get()
    row.delete()  # e.g. a flushed or restored database: the next row gets the same id
    BypassToken.objects.create(pk=row.pk, site_id=1, expires_at=row.expires_at)
    assert through(token) == REFUSED_ASYNC_TOO


def test_tokens_from_1_0_no_longer_work() -> None:
    row = BypassToken.objects.create(expires_at=timezone.now() + timedelta(hours=1))
    old = signing.dumps({"i": row.pk, "e": int(row.expires_at.timestamp())}, salt=bypass.SALT, compress=False)
    turn(True)
    assert through(old) == REFUSED_ASYNC_TOO


def test_clearing_revoked_does_not_revive_a_token() -> None:
    token = issue()
    turn(True)
    call_command("setmaintenance", "bypass", "--revoke-all", stdout=StringIO())
    row = BypassToken.objects.get()
    row.revoked = False
    row.save()
    BypassToken.objects.update(revoked=False)
    store.invalidate()
    assert through(token) == REFUSED_ASYNC_TOO


# --- admin ------------------------------------------------------------------------------------

TOKENS = "/admin/maintenance_flags/bypasstoken/"


def superuser(django_user_model: type[User]) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    return client


def staff_with(django_user_model: type[User], username: str, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_revoking_in_the_admin_needs_the_change_permission(django_user_model: type[User]) -> None:
    token = issue()
    turn(True)
    row = BypassToken.objects.get()
    viewer = staff_with(django_user_model, "viewer", "view_bypasstoken")
    page = viewer.get(TOKENS)
    assert page.status_code == 200
    assert "revoke_tokens" not in page.content.decode()  # the action is not offered
    viewer.post(TOKENS, {"action": "revoke_tokens", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert not row.revoked
    assert through(token)["header"] == 200
    editor = staff_with(django_user_model, "editor", "change_bypasstoken")
    assert "revoke_tokens" in editor.get(TOKENS).content.decode()
    editor.post(TOKENS, {"action": "revoke_tokens", "_selected_action": [row.pk]})
    assert BypassToken.objects.get(pk=row.pk).revoked
    assert through(token) == REFUSED_ASYNC_TOO


def test_revoked_is_read_only_on_the_change_form(django_user_model: type[User]) -> None:
    token = issue()
    turn(True)
    row = BypassToken.objects.get()
    bypass.revoke_tokens(BypassToken.objects.all())
    admin = superuser(django_user_model)
    change = f"{TOKENS}{row.pk}/change/"
    page = admin.get(change)
    assert page.status_code == 200
    assert 'name="revoked"' not in page.content.decode()
    assert 'name="site"' not in page.content.decode()
    assert admin.post(change, {"revoked": "", "site": "", "label": "x"}).status_code == 302
    assert BypassToken.objects.get(pk=row.pk).revoked
    assert row.site_id == 1
    assert through(token) == REFUSED_ASYNC_TOO


def test_the_admin_issues_a_link_for_every_site(django_user_model: type[User]) -> None:
    admin = superuser(django_user_model)
    form = admin.get(f"{TOKENS}add/").content.decode()
    assert "Every site" in form
    response = admin.post(f"{TOKENS}add/", {"site": "", "minutes": "30", "label": "all"}, follow=True)
    match = re.search(r"http://testserver/\?maintenance_bypass=([^<\s]+)", response.content.decode())
    assert match is not None  # every site: the link points at the host the admin is on
    token = match.group(1)
    assert BypassToken.objects.get().site is None
    assert "every site" in admin.get(TOKENS).content.decode()
    other = other_site()
    turn(True, site_id=None)
    assert through(token) == OPENS_ASYNC_TOO
    with override_settings(SITE_ID=other.pk):
        assert through(token) == OPENS_ASYNC_TOO
    assert admin.post(f"{TOKENS}add/", {"site": "", "minutes": "43201"}).status_code == 200  # a form error


def test_the_admin_issues_a_link_for_one_site(django_user_model: type[User]) -> None:
    other = other_site()
    admin = superuser(django_user_model)
    response = admin.post(f"{TOKENS}add/", {"site": str(other.pk), "minutes": "30"}, follow=True)
    match = re.search(r"https?://other\.example/\?maintenance_bypass=([^<\s]+)", response.content.decode())
    assert match is not None
    assert OTHER in admin.get(TOKENS).content.decode()
    turn(True, site_id=None)
    assert through(match.group(1)) == REFUSED_ASYNC_TOO  # SITE_ID = 1
    with override_settings(SITE_ID=other.pk):
        assert through(match.group(1)) == OPENS_ASYNC_TOO


# --- the migration --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migration_retires_1_0_tokens() -> None:
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes("maintenance_flags")
    before = [("maintenance_flags", "0001_initial")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("maintenance_flags", "BypassToken")
    expires = timezone.now() + timedelta(hours=1)
    old.objects.bulk_create([old(label="a", expires_at=expires), old(label="b", expires_at=expires)])
    executor = MigrationExecutor(connection)
    executor.migrate(leaves)
    rows = list(BypassToken.objects.all())
    assert len(rows) == 2
    assert all(row.revoked and row.site is None for row in rows)
    assert len({row.secret for row in rows}) == 2  # one secret per row, not one shared default
