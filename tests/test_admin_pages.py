from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.sites.models import Site
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from waffle.models import Switch

from maintenance_flags.models import IgnoredURL, SwitchDetail
from tests.utils import active, run

pytestmark = pytest.mark.django_db

URL = "/admin/maintenance_flags/sitemaintenance/"


@pytest.fixture
def admin(django_user_model: type[User]) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    return client


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


def test_change_needs_waffle_permission(django_user_model: type[User]) -> None:
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


def test_csrf_is_enforced(django_user_model: type[User]) -> None:
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


def staff_with(django_user_model: type[User], *perms: str) -> Client:
    """A staff user with exactly these permissions (``app_label.codename``)."""
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("perms", "sees", "changes"),
    [
        ((), False, False),
        (("waffle.view_switch",), True, False),
        (("waffle.change_switch",), True, True),  # change implies view, as in Django's admin
        (("waffle.view_switch", "waffle.change_switch"), True, True),
        # Permissions on other models never count, even ones with similar names:
        (("waffle.change_flag", "waffle.change_sample", "waffle.add_switch", "waffle.delete_switch"), False, False),
        (("sites.change_site", "sites.view_site"), False, False),
    ],
)
def test_the_page_asks_for_the_switch_permissions(
    django_user_model: type[User], perms: tuple[str, ...], sees: bool, changes: bool
) -> None:
    client = staff_with(django_user_model, *perms)
    assert client.get(URL).status_code == (200 if sees else 403)
    assert ("Site maintenance" in client.get("/admin/").content.decode()) is sees
    assert client.post(URL, {"site-1": "on"}).status_code == (302 if changes else 403)
    assert active("maintenance_mode_site_1") is changes


def test_switch_permission_follows_the_switch_model(
    django_user_model: type[User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With another switch model (``WAFFLE_SWITCH_MODEL``), its permissions are the ones asked for."""
    from maintenance_flags import admin_pages
    from maintenance_flags.admin_pages import switch_permission

    assert switch_permission("change") == "waffle.change_switch"
    monkeypatch.setattr(admin_pages, "switch_model", lambda: Site)  # any model other than waffle's
    assert switch_permission("change") == "sites.change_site"
    assert switch_permission("view") == "sites.view_site"
    waffle_only = staff_with(django_user_model, "waffle.view_switch", "waffle.change_switch")
    assert waffle_only.get(URL).status_code == 403
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label="sites", codename="change_site"))
    client = Client()
    client.force_login(viewer)
    assert client.get(URL).status_code == 200


def test_a_stale_admin_form_does_not_undo_changes_made_elsewhere(django_user_model: type[User]) -> None:
    two = Site.objects.create(domain="two.example", name="Two")
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    form = admin.get("/admin/maintenance_flags/sitemaintenance/").content.decode()
    assert f'name="initial-site-{two.pk}"' not in form  # the page showed site two off
    run("on", str(two.pk))  # meanwhile, from the command line
    # The admin ticks site 1 on the page loaded before: site two's box is unticked there.
    admin.post("/admin/maintenance_flags/sitemaintenance/", {"_initial": "1", "site-1": "on"})
    assert Switch.objects.get(name="maintenance_mode_site_1").active
    assert Switch.objects.get(name=f"maintenance_mode_site_{two.pk}").active  # not undone
