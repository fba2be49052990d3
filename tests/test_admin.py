from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.sites.models import Site
from django.test import Client
from django.urls import reverse
from waffle.models import Switch

from maintenance_flags.models import IgnoredURL

pytestmark = pytest.mark.django_db

URL = "/admin/maintenance_flags/sitemaintenance/"


@pytest.fixture
def admin(django_user_model: type) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    return client


def active(name: str) -> bool:
    return Switch.objects.get(name=name).active


def test_index_lists_our_section(admin: Client) -> None:
    html = admin.get("/admin/").content.decode()
    assert "Site maintenance" in html
    assert "Ignored URLs" in html
    assert reverse("admin:maintenance_flags_sitemaintenance_changelist") == URL


def test_page_lists_every_site_with_checkbox(admin: Client) -> None:
    Site.objects.create(domain="two.example", name="Two")
    html = admin.get(URL).content.decode()
    assert "example.com" in html
    assert "two.example" in html
    assert "In maintenance mode" in html
    assert "All sites" in html
    assert 'name="site-1"' in html


def test_ticking_and_saving_turns_the_switch_on_and_off(admin: Client) -> None:
    response = admin.post(URL, {"site-1": "on"})
    assert response.status_code == 302
    assert active("maintenance_mode_site_1")
    assert 'name="site-1" id="id_site-1" aria-label="In maintenance mode: example.com" checked' in (
        admin.get(URL).content.decode()
    )
    assert Client().get("/").status_code == 503
    admin.post(URL, {})
    assert not active("maintenance_mode_site_1")
    assert Client().get("/").status_code == 200


def test_a_passed_planned_end_shows_as_off(admin: Client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from maintenance_flags.models import SwitchDetail

    admin.post(URL, {"site-1": "on"})
    SwitchDetail.objects.filter(switch_name="maintenance_mode_site_1").update(
        ends_at=timezone.now() - timedelta(seconds=1)
    )  # the end passed, not yet recorded
    assert 'aria-label="In maintenance mode: example.com" checked' not in admin.get(URL).content.decode()


def test_all_sites_checkbox(admin: Client) -> None:
    admin.post(URL, {"all-sites": "on"})
    assert active("maintenance_mode_all_sites")
    assert not active("maintenance_mode_site_1")
    admin.post(URL, {})
    assert not active("maintenance_mode_all_sites")


def test_nothing_changed_message(admin: Client) -> None:
    response = admin.post(URL, {}, follow=True)
    assert "Nothing changed" in response.content.decode()


def test_change_needs_waffle_permission(django_user_model: type) -> None:
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get(URL).status_code == 403
    assert "Site maintenance" not in client.get("/admin/").content.decode()
    user.user_permissions.add(Permission.objects.get(codename="view_switch"))
    user = django_user_model.objects.get(pk=user.pk)
    client.force_login(user)
    html = client.get(URL).content.decode()
    assert "disabled" in html
    assert 'name="_save"' not in html
    assert client.post(URL, {"site-1": "on"}).status_code == 403
    assert not active("maintenance_mode_site_1")
    user.user_permissions.add(Permission.objects.get(codename="change_switch"))
    client.force_login(django_user_model.objects.get(pk=user.pk))
    assert client.post(URL, {"site-1": "on"}).status_code == 302
    assert active("maintenance_mode_site_1")


def test_csrf_is_enforced(django_user_model: type) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    assert client.post(URL, {"site-1": "on"}).status_code == 403
    assert not active("maintenance_mode_site_1")


def test_no_add_or_delete(admin: Client) -> None:
    assert admin.get(URL + "add/").status_code == 404


def test_ignored_url_admin_rejects_bad_regex(admin: Client) -> None:
    response = admin.post("/admin/maintenance_flags/ignoredurl/add/", {"pattern": "(unclosed", "description": ""})
    assert response.status_code == 200
    assert "Enter a valid regular expression" in response.content.decode()
    assert not IgnoredURL.objects.exists()
    response = admin.post("/admin/maintenance_flags/ignoredurl/add/", {"pattern": "^ignored-page/$"})
    assert response.status_code == 302
    assert IgnoredURL.objects.get().pattern == "^ignored-page/$"


def test_waffle_switch_admin_keeps_working(admin: Client) -> None:
    switch = Switch.objects.get(name="maintenance_mode_site_1")
    url = f"/admin/waffle/switch/{switch.pk}/change/"
    assert admin.get(url).status_code == 200
    dates = {"created_0": "2026-01-01", "created_1": "00:00:00", "modified_0": "2026-01-01", "modified_1": "00:00:00"}
    response = admin.post(url, {"name": switch.name, "active": "on", "note": switch.note, **dates})
    assert response.status_code == 302
    assert active("maintenance_mode_site_1")
    assert Client().get("/").status_code == 503


def test_readonly_and_message_from_the_admin(admin: Client) -> None:
    response = admin.post(URL, {"readonly-site-1": "on", "message-site-1": "Migrating data"})
    assert response.status_code == 302, response.content[:300]
    assert active("maintenance_readonly_site_1")
    assert Client().get("/").status_code == 200
    response = Client().post("/submit/")
    assert response.status_code == 503
    assert b"Migrating data" in response.content
    html = admin.get(URL).content.decode()
    assert 'value="Migrating data"' in html
    assert "Read-only" in html
    admin.post(URL, {"_initial": "1", "initial-readonly-site-1": "1", "initial-message-site-1": "Migrating data"})
    assert not active("maintenance_readonly_site_1")
    assert Client().post("/submit/").status_code == 200
