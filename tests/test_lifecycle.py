"""Switches exist after migrate and follow Sites; models validate; state helpers."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.sites.models import Site
from django.core.exceptions import ValidationError
from django.core.management import call_command
from waffle.models import Switch

from maintenance_flags.models import IgnoredURL
from maintenance_flags.names import ALL_SITES_SWITCH
from maintenance_flags.snapshot import UNKNOWN, Snapshot, load_snapshot
from maintenance_flags.state import state_for_site_id
from maintenance_flags.store import store
from maintenance_flags.switches import set_switch

pytestmark = pytest.mark.django_db


def test_switches_exist_after_migrate_inactive_with_note() -> None:
    switches = {s.name: s for s in Switch.objects.filter(name__startswith="maintenance_mode_")}
    assert set(switches) == {"maintenance_mode_site_1", ALL_SITES_SWITCH}
    assert not any(s.active for s in switches.values())
    assert "maintenance_flags" in switches["maintenance_mode_site_1"].note


def test_new_site_gets_a_switch_and_deleting_removes_it() -> None:
    site = Site.objects.create(domain="new.example", name="New")
    switch = Switch.objects.get(name=f"maintenance_mode_site_{site.pk}")
    assert not switch.active
    site.delete()
    assert not Switch.objects.filter(name=f"maintenance_mode_site_{site.pk}").exists()


def test_migrate_creates_missing_switches() -> None:
    Site.objects.bulk_create([Site(domain="bulk.example", name="Bulk")])
    site = Site.objects.get(domain="bulk.example")
    Switch.objects.get(name=ALL_SITES_SWITCH).delete()
    call_command("migrate", verbosity=0, stdout=StringIO())
    assert Switch.objects.filter(name=f"maintenance_mode_site_{site.pk}", active=False).exists()
    assert Switch.objects.filter(name=ALL_SITES_SWITCH).exists()


def test_missing_switch_means_off() -> None:
    Switch.objects.filter(name__startswith="maintenance_mode_").delete()
    state = state_for_site_id(load_snapshot(), 1)
    assert not state.active
    assert state.reason == "off"


def test_ignored_url_validation() -> None:
    with pytest.raises(ValidationError, match="valid regular expression"):
        IgnoredURL(pattern="(unclosed").full_clean()
    IgnoredURL(pattern="^ignored-page/$").full_clean()
    assert str(IgnoredURL(pattern="^x")) == "^x"


def test_set_switch_reports_changes() -> None:
    _, changed = set_switch("maintenance_mode_site_1", True)
    assert changed
    _, changed = set_switch("maintenance_mode_site_1", True)
    assert not changed


def test_unknown_snapshot_uses_fail_mode(settings: object) -> None:
    assert state_for_site_id(UNKNOWN, 1).active  # closed by default
    from django.test import override_settings

    with override_settings(MAINTENANCE_FAIL_MODE="open"):
        assert not state_for_site_id(UNKNOWN, 1).active


def test_failed_read_keeps_last_known_state(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    set_switch("maintenance_mode_site_1", True)
    known = store.get()
    assert known.switches["maintenance_mode_site_1"]

    def broken() -> Snapshot:
        raise RuntimeError("database is down")

    monkeypatch.setattr("maintenance_flags.store.load_snapshot", broken)
    store.invalidate()
    assert store.get() is known
    assert "using the last known state" in caplog.text
    store.reset()
    assert store.get() is UNKNOWN
    assert "using MAINTENANCE_FAIL_MODE" in caplog.text
    monkeypatch.undo()
    store.invalidate()
    assert store.get().known
    assert "can be read again" in caplog.text
