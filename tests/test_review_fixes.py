"""Regression tests for problems found in review (each failed before its fix)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sites.models import Site
from django.core.management import CommandError
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone
from waffle.models import Switch

from maintenance_flags.models import MaintenanceWindow, SwitchDetail
from maintenance_flags.signals import maintenance_ended
from maintenance_flags.snapshot import UNKNOWN, load_snapshot
from maintenance_flags.state import state_for_site_id
from maintenance_flags.store import store
from tests.conftest import django_templates, locmem, run, turn

pytestmark = pytest.mark.django_db


@override_settings(USE_TZ=False)
def test_times_without_time_zones() -> None:
    run("on", "--until", "2099-12-01T02:00Z")
    run("schedule", "--start", "2099-12-01T01:00", "--end", "2099-12-01T02:00Z")
    window = MaintenanceWindow.objects.get()
    assert timezone.is_naive(window.starts_at)
    assert Client().get("/").status_code == 503


def test_staff_on_an_ignored_url_sees_the_staff_banner(staff_client: Client) -> None:
    from maintenance_flags.models import IgnoredURL

    IgnoredURL.objects.create(pattern="^ignored-page/$")
    turn(True)
    assert "Maintenance mode is on" in staff_client.get("/ignored-page/").content.decode()
    html = Client().get("/ignored-page/").content.decode()
    assert "under maintenance" in html
    assert "Maintenance mode is on" not in html


@override_settings(INTERNAL_IPS=["127.0.0.1"])
def test_allowed_ip_on_an_ignored_url_sees_the_staff_banner() -> None:
    from maintenance_flags.models import IgnoredURL

    IgnoredURL.objects.create(pattern="^ignored-page/$")
    turn(True)
    assert "Maintenance mode is on" in Client().get("/ignored-page/").content.decode()


@pytest.mark.parametrize(
    "args",
    [
        ["schedule", "--all", "1", "--start", "2099-01-01T00:00Z"],
        ["bypass", "--all", "1"],
        ["history", "--all"],
        ["readonly", "on", "--all", "1"],
    ],
)
def test_all_is_never_combined_with_ids_or_misused(args: list[str]) -> None:
    with pytest.raises(CommandError, match="--all"):
        run(*args)
    assert not MaintenanceWindow.objects.exists()


@override_settings(MAINTENANCE_ADMIN_IGNORED_URLS=[re.compile("^admin"), None, "^ok/"])
def test_non_string_patterns_in_settings_are_skipped() -> None:
    turn(True)
    assert Client().get("/").status_code == 503
    assert Client().get("/ok/").status_code == 404


@pytest.mark.parametrize(("name", "value"), [("MAINTENANCE_STATE_TTL", None), ("MAINTENANCE_RETRY_AFTER", "soon")])
def test_bad_numbers_in_settings_fall_back_to_defaults(name: str, value: Any) -> None:
    turn(True)
    with override_settings(**{name: value}):
        response = Client().get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "3600"


def test_switch_permission_follows_the_switch_model() -> None:
    from maintenance_flags.admin_pages import switch_permission

    assert switch_permission("change") == "waffle.change_switch"
    assert switch_permission("view") == "waffle.view_switch"


def test_deleting_a_site_signals_that_site() -> None:
    site = Site.objects.create(domain="gone.example", name="Gone")
    run("on", str(site.pk))
    received: list[dict[str, Any]] = []

    def ended(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs)

    maintenance_ended.connect(ended)
    try:
        site.delete()
    finally:
        maintenance_ended.disconnect(ended)
    assert len(received) == 1
    assert received[0]["site"] is site
    assert received[0]["reason"] == "site deleted"


def test_saving_a_site_recreates_its_missing_switch() -> None:
    Switch.objects.get(name="maintenance_mode_site_1").delete()
    Site.objects.get(pk=1).save()
    assert Switch.objects.filter(name="maintenance_mode_site_1", active=False).exists()


def test_on_after_a_planned_end_passed_turns_it_on_again() -> None:
    run("on", "--for", "1h")
    SwitchDetail.objects.update(ends_at=timezone.now() - timedelta(seconds=1))  # the end passed, unnoticed
    out = run("on")
    assert "already on" not in out
    assert "1 example.com on (site switch)" in out
    assert Client().get("/").status_code == 503


def test_off_after_a_planned_end_passed_turns_it_off() -> None:
    from maintenance_flags.models import MaintenanceEvent

    run("on", "--for", "1h")
    SwitchDetail.objects.update(ends_at=timezone.now() - timedelta(seconds=1))  # the end passed, unnoticed
    run("off")
    assert not Switch.objects.get(name="maintenance_mode_site_1").active  # the row, not only the detail
    assert not SwitchDetail.objects.exists()
    store.invalidate()
    assert Client().get("/").status_code == 200
    ended = MaintenanceEvent.objects.filter(switch_name="maintenance_mode_site_1", active=False).get()
    assert ended.source == "schedule"  # the end that passed, recorded once


def test_on_after_a_planned_end_passed_records_both_changes() -> None:
    from maintenance_flags.models import MaintenanceEvent

    run("on", "--for", "1h")
    SwitchDetail.objects.update(ends_at=timezone.now() - timedelta(seconds=1))
    run("on")
    events = MaintenanceEvent.objects.filter(switch_name="maintenance_mode_site_1").order_by("pk")
    assert [(e.source, e.active) for e in events] == [("command", True), ("schedule", False), ("command", True)]


def test_extending_a_closed_window_opens_it_again() -> None:
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        site_id=1, starts_at=now - timedelta(hours=2), ends_at=now - timedelta(hours=1), closed_at=now
    )
    assert Client().get("/").status_code == 200
    window.ends_at = now + timedelta(hours=1)
    window.save()
    window.refresh_from_db()
    assert window.closed_at is None
    assert Client().get("/").status_code == 503
    assert state_for_site_id(load_snapshot(), 1).reason == "window"


def test_async_code_uses_the_last_snapshot_while_another_thread_refreshes() -> None:
    first = store.get()
    store.invalidate()
    assert store.without_io() is None  # stale, and nobody is refreshing: read it
    store._lock.acquire()
    try:
        assert store.without_io() is first
    finally:
        store._lock.release()


def test_peek_does_no_io() -> None:
    store.reset()
    assert store.peek() is UNKNOWN
    snapshot = store.get()
    store.invalidate()
    assert store.peek() is snapshot


def test_a_project_override_of_the_builtin_template_is_not_memoised() -> None:
    turn(True)
    with override_settings(TEMPLATES=django_templates(locmem({"maintenance_flags/503.html": "{{ request.path }}"}))):
        assert Client().get("/one/").content == b"/one/"
        assert Client().get("/two/").content == b"/two/"


def test_a_stale_admin_form_does_not_undo_changes_made_elsewhere(django_user_model: type) -> None:
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


def test_accept_is_case_insensitive() -> None:
    from maintenance_flags.responses import prefers_json

    assert prefers_json(RequestFactory().get("/", headers={"Accept": "APPLICATION/JSON"}))


def test_a_closed_window_moved_into_the_future_opens_later() -> None:
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        site_id=1, starts_at=now - timedelta(hours=2), ends_at=now - timedelta(hours=1), opened_at=now, closed_at=now
    )
    window.starts_at = now + timedelta(hours=1)
    window.ends_at = now + timedelta(hours=2)
    window.save()
    window.refresh_from_db()
    assert window.closed_at is None
    assert window.opened_at is None
    assert Client().get("/").status_code == 200
    assert "Scheduled maintenance" in Client().get("/").content.decode()
