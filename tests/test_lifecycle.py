"""Switches exist after migrate, follow Sites, and a missing one reads as off."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.sites.models import Site
from django.core.management import call_command
from waffle.models import Switch

from maintenance_flags.names import ALL_SITES_SWITCH
from maintenance_flags.snapshot import load_snapshot
from maintenance_flags.state import state_for_site_id

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
