from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.sites.models import Site
from django.core.management import CommandError, call_command
from django.test import override_settings
from waffle.models import Switch

from tests.conftest import run

pytestmark = pytest.mark.django_db


def active(name: str) -> bool:
    return Switch.objects.get(name=name).active


def test_status_lists_every_site_then_global() -> None:
    Site.objects.create(domain="two.example", name="Two")
    lines = run("status").splitlines()
    assert lines[0] == "1 example.com off (off)"
    assert lines[1].endswith("two.example off (off)")
    assert lines[-1] == "all - off (global switch)"


def test_on_and_off_default_to_site_id() -> None:
    out = run("on")
    assert active("maintenance_mode_site_1")
    assert "1 example.com on (site switch)" in out
    run("off")
    assert not active("maintenance_mode_site_1")


def test_repeat_says_already() -> None:
    run("on")
    assert "already on" in run("on")
    run("off")
    assert "already off" in run("off")


def test_on_several_ids() -> None:
    two = Site.objects.create(domain="two.example", name="Two")
    three = Site.objects.create(domain="three.example", name="Three")
    run("on", str(two.pk), str(three.pk))
    assert active(f"maintenance_mode_site_{two.pk}")
    assert active(f"maintenance_mode_site_{three.pk}")
    assert not active("maintenance_mode_site_1")


def test_all_is_the_global_switch() -> None:
    out = run("on", "--all")
    assert active("maintenance_mode_all_sites")
    assert not active("maintenance_mode_site_1")
    assert "1 example.com on (global switch)" in out
    assert "all - on (global switch)" in out
    run("off", "--all")
    assert not active("maintenance_mode_all_sites")


def test_site_switch_reason_wins_over_global() -> None:
    run("on", "--all")
    run("on")
    assert "1 example.com on (site switch)" in run("status")


def test_unknown_id_changes_nothing() -> None:
    with pytest.raises(CommandError, match="No Site with id 99"):
        run("on", "1", "99")
    assert not active("maintenance_mode_site_1")


def test_non_integer_id() -> None:
    with pytest.raises(CommandError, match="integers"):
        run("on", "abc")


def test_all_with_ids_is_an_error() -> None:
    with pytest.raises(CommandError, match="cannot be combined"):
        run("on", "--all", "1")
    assert not active("maintenance_mode_all_sites")


@override_settings(SITE_ID=None)
def test_no_site_id_needs_ids() -> None:
    with pytest.raises(CommandError, match="SITE_ID is not set"):
        run("on")


def test_on_creates_a_missing_switch() -> None:
    Switch.objects.get(name="maintenance_mode_site_1").delete()
    run("on")
    assert active("maintenance_mode_site_1")


def test_off_creates_a_missing_switch() -> None:
    Switch.objects.get(name="maintenance_mode_site_1").delete()
    assert "already off" in run("off")
    assert not active("maintenance_mode_site_1")


def test_sites_without_signals_get_switches_on_command() -> None:
    (site,) = Site.objects.bulk_create([Site(domain="bulk.example", name="Bulk")])
    site = Site.objects.get(domain="bulk.example")
    assert not Switch.objects.filter(name=f"maintenance_mode_site_{site.pk}").exists()
    run("on", str(site.pk))
    assert active(f"maintenance_mode_site_{site.pk}")


def test_status_for_given_ids() -> None:
    two = Site.objects.create(domain="two.example", name="Two")
    lines = run("status", str(two.pk)).splitlines()
    assert lines == [f"{two.pk} two.example off (off)", "all - off (global switch)"]


def test_equivalent_to_waffle_switch() -> None:
    call_command("waffle_switch", "maintenance_mode_site_1", "on", stdout=StringIO())
    assert "1 example.com on (site switch)" in run("status")


def test_bad_action() -> None:
    with pytest.raises(CommandError):
        run("sideways")
