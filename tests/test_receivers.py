"""Receivers: switches follow migrate and Sites; local saves are seen at once."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.sites.models import Site
from django.db import DatabaseError
from django.test import override_settings
from waffle.models import Switch

from maintenance_flags import receivers
from maintenance_flags.signals import maintenance_ended
from tests.utils import run

pytestmark = pytest.mark.django_db


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


class NoWaffle:
    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if app_label == "waffle" else None


def test_migrate_respects_routers() -> None:
    Switch.objects.filter(name="maintenance_mode_all_sites").delete()
    with override_settings(DATABASE_ROUTERS=[NoWaffle()]):
        receivers.create_switches_after_migrate(using="default")
    assert not Switch.objects.filter(name="maintenance_mode_all_sites").exists()


def test_migrate_survives_missing_tables(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise DatabaseError("no such table")

    monkeypatch.setattr(receivers, "ensure_switches", broken)
    receivers.create_switches_after_migrate(using="default")
    assert "Could not create the maintenance switches" in caplog.text


def test_raw_site_saves_create_no_switch() -> None:
    site = Site(pk=77, domain="fixture.example", name="Fixture")
    receivers.create_site_switch(instance=site, created=True, raw=True)
    assert not Switch.objects.filter(name="maintenance_mode_site_77").exists()
