"""Peer parity on the admin's "Site maintenance" page: a redirect and a refresh per site and for
every site, next to the message."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.sites.models import Site
from django.core.management import call_command
from django.test import Client

from maintenance_flags.models import MaintenanceEvent, SwitchDetail
from tests.utils import switch_detail, switch_on

pytestmark = pytest.mark.django_db

URL = "/admin/maintenance_flags/sitemaintenance/"
SITE = "maintenance_mode_site_1"
GLOBAL = "maintenance_mode_all_sites"
#: What the page posts back for site 1 and every site when both were off with nothing set.
SHOWN_OFF = {
    "_initial": "1",
    **{f"initial-{field}-{key}": "" for field in ("message", "redirect", "refresh") for key in ("site-1", "all-sites")},
}


@pytest.fixture
def admin(django_user_model: Any) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    return client


def detail(name: str = SITE) -> tuple[str, int | None]:
    return switch_detail(name)


def page_messages(response: object) -> str:
    return " ".join(str(m) for m in response.context["messages"])  # type: ignore[attr-defined]


def test_the_page_has_redirect_and_refresh_fields(admin: Client) -> None:
    two = Site.objects.create(domain="two.example", name="Two")
    html = admin.get(URL).content.decode()
    for key in ("site-1", f"site-{two.pk}", "all-sites"):
        assert f'name="redirect-{key}"' in html
        assert f'name="refresh-{key}"' in html
        assert f'name="initial-redirect-{key}" value=""' in html
    assert 'aria-label="Redirect to: two.example"' in html
    assert 'aria-label="Refresh (seconds): example.com"' in html
    assert "Redirect for every site" in html and "Refresh for every site (seconds)" in html


def test_turning_a_site_on_with_a_redirect_and_refresh(admin: Client) -> None:
    response = admin.post(URL, {**SHOWN_OFF, "site-1": "on", "redirect-site-1": "/status/", "refresh-site-1": "30"})
    assert response.status_code == 302
    assert switch_on(SITE)
    assert detail() == ("/status/", 30)
    html = admin.get(URL).content.decode()
    assert 'name="redirect-site-1" value="/status/"' in html
    assert 'name="refresh-site-1" value="30"' in html
    assert 'name="initial-refresh-site-1" value="30"' in html
    visitor = Client().get("/")
    assert (visitor.status_code, visitor["Location"]) == (302, "/status/")


def test_every_site(admin: Client) -> None:
    admin.post(
        URL,
        {
            **SHOWN_OFF,
            "all-sites": "on",
            "redirect-all-sites": " https://status.example.com/ ",
            "refresh-all-sites": "60",
        },
    )
    assert switch_on(GLOBAL) and not switch_on(SITE)
    assert detail(GLOBAL) == ("https://status.example.com/", 60)
    assert 'value="https://status.example.com/"' in admin.get(URL).content.decode()


def test_changing_them_on_a_site_that_stays_on(admin: Client) -> None:
    admin.post(URL, {**SHOWN_OFF, "site-1": "on", "message-site-1": "Upgrading"})
    shown = {
        **SHOWN_OFF,
        "initial-site-1": "1",
        "initial-message-site-1": "Upgrading",
        "site-1": "on",
        "message-site-1": "Upgrading",
    }
    response = admin.post(URL, {**shown, "redirect-site-1": "/status/", "refresh-site-1": "15"}, follow=True)
    assert "Maintenance mode updated: example.com: maintenance on." in page_messages(response)
    assert detail() == ("/status/", 15)
    assert MaintenanceEvent.objects.count() == 1  # as for the message: the switch stayed on
    shown |= {"initial-redirect-site-1": "/status/", "initial-refresh-site-1": "15"}
    response = admin.post(URL, {**shown, "redirect-site-1": "/status/", "refresh-site-1": "15"}, follow=True)
    assert "Nothing changed." in page_messages(response)
    admin.post(URL, {**shown, "redirect-site-1": "", "refresh-site-1": ""})  # emptied: removed
    assert detail() == ("", None)
    assert SwitchDetail.objects.get(switch_name=SITE).message == "Upgrading"


def test_a_stale_form_does_not_undo_a_redirect_set_elsewhere(admin: Client) -> None:
    call_command("setmaintenance", "on", stdout=StringIO(), stderr=StringIO())
    shown = {**SHOWN_OFF, "initial-site-1": "1", "site-1": "on"}  # the page as loaded now
    call_command("setmaintenance", "on", "--redirect", "/x/", "--refresh", "9", stdout=StringIO(), stderr=StringIO())
    admin.post(URL, {**shown, "message-site-1": "New text", "redirect-site-1": "", "refresh-site-1": ""})
    row = SwitchDetail.objects.get(switch_name=SITE)
    assert (row.message, row.redirect_url, row.refresh) == ("New text", "/x/", 9)


def test_without_the_initial_fields_the_state_now_is_compared(admin: Client) -> None:
    admin.post(URL, {"site-1": "on", "redirect-site-1": "/a/", "refresh-site-1": "5"})
    assert detail() == ("/a/", 5)
    response = admin.post(URL, {"site-1": "on", "redirect-site-1": "/a/", "refresh-site-1": "5"}, follow=True)
    assert "Nothing changed." in page_messages(response)
    admin.post(URL, {"site-1": "on", "redirect-site-1": "/b/", "refresh-site-1": "5"})
    assert detail() == ("/b/", 5)


def test_a_refresh_the_page_cannot_have_shown_counts_as_a_change(admin: Client) -> None:
    admin.post(URL, {**SHOWN_OFF, "site-1": "on", "refresh-site-1": "5"})
    tampered = {
        **SHOWN_OFF,
        "initial-site-1": "1",
        "site-1": "on",
        "initial-refresh-site-1": "x",
        "refresh-site-1": "7",
    }
    admin.post(URL, tampered)
    assert detail() == ("", 7)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("redirect-site-1", "javascript:alert(1)", "example.com, redirect: 'javascript:alert(1)' is not a path"),
        ("redirect-site-1", "//evil.example/", "example.com, redirect: '//evil.example/' is not a path"),
        ("refresh-site-1", "abc", "example.com, refresh: 'abc' is not a whole number of seconds from 1 to 86400"),
        ("refresh-all-sites", "-5", "all sites, refresh: '-5' is not a whole number of seconds"),
        ("refresh-all-sites", "86401", "all sites, refresh: '86401' is not a whole number of seconds"),
        ("redirect-all-sites", "status", "all sites, redirect: 'status' is not a path starting with /"),
    ],
)
def test_invalid_values_change_nothing_and_say_why(admin: Client, field: str, value: str, error: str) -> None:
    response = admin.post(URL, {**SHOWN_OFF, "site-1": "on", "all-sites": "on", field: value}, follow=True)
    assert response.status_code == 200
    text = page_messages(response)
    assert text.startswith("Nothing was changed: ")
    assert error in text
    assert not switch_on(SITE) and not switch_on(GLOBAL)
    assert not SwitchDetail.objects.exists()


def test_every_problem_is_named(admin: Client) -> None:
    response = admin.post(URL, {"redirect-site-1": "x", "refresh-site-1": "y"}, follow=True)
    text = page_messages(response)
    assert "example.com, redirect: 'x'" in text and "; example.com, refresh: 'y'" in text


def test_read_only_does_not_take_them(admin: Client) -> None:
    admin.post(URL, {**SHOWN_OFF, "readonly-site-1": "on", "redirect-site-1": "/status/", "refresh-site-1": "30"})
    assert switch_on("maintenance_readonly_site_1")
    assert not switch_on(SITE)
    assert not SwitchDetail.objects.filter(switch_name=SITE).exists()
    assert SwitchDetail.objects.get(switch_name="maintenance_readonly_site_1").redirect_url == ""


def test_changing_them_needs_the_waffle_permission(django_user_model: Any) -> None:
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_switch"))
    client = Client()
    client.force_login(user)
    html = client.get(URL).content.decode()
    assert (
        'name="redirect-site-1" value="" maxlength="2000" placeholder="No redirect" aria-label="Redirect to: ' in html
    )
    assert html.count(" disabled>") >= 6  # each field, the message's and the new ones
    assert 'name="refresh-all-sites" id="id_refresh-all-sites" value="" min="1" max="86400" step="1" disabled>' in html
    post = {**SHOWN_OFF, "site-1": "on", "redirect-site-1": "/status/"}
    assert client.post(URL, post).status_code == 403
    assert not SwitchDetail.objects.exists()
    user.user_permissions.add(Permission.objects.get(codename="change_switch"))
    client.force_login(django_user_model.objects.get(pk=user.pk))
    assert client.post(URL, post).status_code == 302
    assert detail() == ("/status/", None)
