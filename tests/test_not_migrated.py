"""Tables missing while the database answers (installed, not migrated yet): not an outage.

The whole-deploy scenario, with real server processes and a database that never saw
``migrate``, is ``test_faults.test_installed_but_not_migrated_is_not_an_outage``; these cover
each part of the state and the switch receivers in this process, by renaming a table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.contrib.sites.models import Site
from django.db import DatabaseError, connection
from django.test import Client

from maintenance_flags import schema
from maintenance_flags import snapshot as snapshot_module
from maintenance_flags.names import site_switch_name
from maintenance_flags.snapshot import load_snapshot
from maintenance_flags.store import store
from tests.utils import turn

pytestmark = pytest.mark.django_db(transaction=True)

MIGRATE = "run `manage.py migrate`"


@contextmanager
def renamed(table: str) -> Iterator[None]:
    """The table is missing while the block runs (as before ``migrate``), then back."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {quote(table)} RENAME TO {quote(table + '_away')}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {quote(table + '_away')} RENAME TO {quote(table)}")


@pytest.fixture(autouse=True)
def _warn_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_module, "_warned", set())  # "once per process": this test is the process


def migrate_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if MIGRATE in r.getMessage()]


def test_no_switch_table_means_nothing_is_in_maintenance(caplog: pytest.LogCaptureFixture, settings: object) -> None:
    settings.MAINTENANCE_STATE_TTL = 0  # type: ignore[attr-defined]
    turn(True)
    with caplog.at_level(logging.WARNING, logger="maintenance_flags"), renamed("waffle_switch"):
        for _ in range(3):
            assert Client().get("/").status_code == 200
    assert len(migrate_warnings(caplog)) == 1
    assert not any(r.exc_info for r in caplog.records)
    assert Client().get("/").status_code == 503  # "migrate" ran: picked up with no restart


@pytest.mark.parametrize(
    "table",
    [
        "maintenance_flags_bypasstoken",
        "maintenance_flags_switchdetail",
        "maintenance_flags_maintenancewindow",
        "maintenance_flags_ignoredurl",
    ],
)
def test_a_newer_table_missing_keeps_the_switches(table: str, caplog: pytest.LogCaptureFixture) -> None:
    """A new version deployed before its ``migrate``: what can be read still counts."""
    turn(True)
    with caplog.at_level(logging.WARNING, logger="maintenance_flags"), renamed(table):
        snapshot = load_snapshot()
        assert snapshot.switches[site_switch_name(1)] is True
        assert Client().get("/").status_code == 503
    assert len(migrate_warnings(caplog)) == 1


def test_no_sites_table_means_only_the_global_switch(caplog: pytest.LogCaptureFixture) -> None:
    turn(True)
    with renamed("django_site"):
        assert load_snapshot().sites_by_id == {}
    turn(True, site_id=None)
    with renamed("django_site"):
        store.reset()
        assert Client().get("/").status_code == 503


@contextmanager
def unreachable() -> Iterator[None]:
    """The database cannot be reached while the block runs (a path or port where none is)."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent/maintenance-flags/db.sqlite3"
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT="1")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def test_a_database_that_cannot_be_reached_is_still_fail_mode() -> None:
    with unreachable():
        assert schema.database_answers() is False
        with pytest.raises(DatabaseError):
            load_snapshot()
    assert schema.database_answers() is True


def test_a_site_saved_before_waffle_is_migrated(caplog: pytest.LogCaptureFixture) -> None:
    """``migrate sites`` alone creates the default Site before waffle's tables exist."""
    with caplog.at_level(logging.WARNING, logger="maintenance_flags"), renamed("waffle_switch"):
        Site.objects.create(domain="early.example", name="Early")
    assert "will be created when `manage.py migrate`" in caplog.text
    assert not any(r.exc_info for r in caplog.records)
