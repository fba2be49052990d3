"""``import_maintenancemode2``: django-maintenancemode-2's tables, made with raw SQL, imported."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.contrib.sites.models import Site
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from waffle.models import Switch

from maintenance_flags.models import IgnoredURL
from maintenance_flags.switches import set_switch
from tests.utils import active

# The schema django-maintenancemode-2's migrations leave behind (0001–0003), in portable SQL.
LEGACY_TABLES = (
    "CREATE TABLE maintenancemode_maintenance ("
    " id INTEGER PRIMARY KEY, site_id INTEGER NOT NULL UNIQUE, is_being_performed BOOLEAN NOT NULL)",
    "CREATE TABLE maintenancemode_ignoredurl ("
    " id INTEGER PRIMARY KEY, maintenance_id INTEGER NOT NULL,"
    " pattern VARCHAR(255) NOT NULL, description VARCHAR(75) NOT NULL)",
)

# DDL commits on MariaDB, so these tests run outside a wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def legacy(transactional_db: None) -> Iterator[None]:
    with connection.cursor() as cursor:
        for statement in LEGACY_TABLES:
            cursor.execute(statement)
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE maintenancemode_ignoredurl")
        cursor.execute("DROP TABLE maintenancemode_maintenance")


def add_maintenance(row_id: int, site_id: int, on: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO maintenancemode_maintenance (id, site_id, is_being_performed) VALUES (%s, %s, %s)",
            [row_id, site_id, on],
        )


def add_ignored(row_id: int, maintenance_id: int, pattern: str, description: str = "") -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO maintenancemode_ignoredurl (id, maintenance_id, pattern, description) VALUES (%s, %s, %s, %s)",
            [row_id, maintenance_id, pattern, description],
        )


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_maintenancemode2", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def ignored() -> list[tuple[int | None, str, str]]:
    return sorted(IgnoredURL.objects.values_list("site_id", "pattern", "description"), key=repr)


@pytest.fixture
def two_sites(legacy: None) -> Site:
    """Site 1 in maintenance there, a second site not; three patterns, one of them per site 2."""
    two = Site.objects.create(domain="two.example", name="Two")
    add_maintenance(10, 1, True)
    add_maintenance(11, two.pk, False)
    add_ignored(1, 10, "^ignored-page/$", "Help page")
    add_ignored(2, 10, "/contact", "Contact")
    add_ignored(3, 11, "^about/", "")
    return two


def test_missing_tables_are_a_clear_error(transactional_db: None) -> None:
    with pytest.raises(CommandError, match="maintenancemode_maintenance, maintenancemode_ignoredurl do not exist"):
        run()


def test_imports_switches_and_patterns(two_sites: Site) -> None:
    set_switch(f"maintenance_mode_site_{two_sites.pk}", True)  # on here, off there: theirs wins
    out = run()
    assert active("maintenance_mode_site_1")
    assert not active(f"maintenance_mode_site_{two_sites.pk}")
    assert not active("maintenance_mode_all_sites")
    assert ignored() == sorted(
        [(1, "^ignored-page/$", "Help page"), (1, "/contact", "Contact"), (two_sites.pk, "^about/", "")], key=repr
    )
    lines = out.splitlines()
    assert lines[0] == "Found 2 Maintenance row(s) and 3 IgnoredURL row(s) in django-maintenancemode-2's tables."
    assert "Site 1 (example.com): maintenance on: switch maintenance_mode_site_1 turned on." in lines
    assert (
        f"Site {two_sites.pk} (two.example): maintenance off: switch maintenance_mode_site_{two_sites.pk} turned off."
        in lines
    )
    assert "Ignored URL 1 '^ignored-page/$' (site 1): imported." in lines
    from maintenance_flags.models import MaintenanceEvent

    imported = MaintenanceEvent.objects.filter(reason="imported from django-maintenancemode-2")
    assert sorted(e.source for e in imported) == ["command", "command"]
    assert lines[-1] == (
        "Switches: 2 changed, 0 already right. Ignored URLs: 3 imported, 0 duplicate(s) skipped, "
        "0 invalid skipped. Rows without a Site skipped: 0."
    )


def test_imported_state_is_served(two_sites: Site) -> None:
    run()
    client = Client()
    assert client.get("/").status_code == 503
    assert client.get("/ignored-page/").status_code == 200


def test_second_run_changes_nothing(two_sites: Site) -> None:
    run()
    before = ignored()
    out = run()
    assert ignored() == before
    assert active("maintenance_mode_site_1")
    assert "Site 1 (example.com): maintenance on: switch maintenance_mode_site_1 already on." in out
    assert "Skipped Ignored URL 1 '^ignored-page/$' (site 1): already present." in out
    assert out.splitlines()[-1].startswith("Switches: 0 changed, 2 already right. Ignored URLs: 0 imported, 3 dup")


def test_dry_run_changes_nothing(two_sites: Site) -> None:
    out = run("--dry-run")
    assert not active("maintenance_mode_site_1")
    assert IgnoredURL.objects.count() == 0
    assert "Site 1 (example.com): maintenance on: would turn switch maintenance_mode_site_1 on." in out
    assert "Ignored URL 2 '/contact' (site 1): would import." in out
    assert "Switches: 1 would change, 1 already right. Ignored URLs: 3 would import" in out
    assert out.splitlines()[-1] == "Dry run: nothing was changed."


def test_duplicates_and_invalid_patterns_are_skipped_with_a_reason(legacy: None) -> None:
    IgnoredURL.objects.create(pattern="^help/", site=None, description="ours, every site")
    IgnoredURL.objects.create(pattern="^news/", site_id=1)
    add_maintenance(10, 1, False)
    add_ignored(1, 10, "^/help/")  # same as the all-sites row once the slash is normalised
    add_ignored(2, 10, "^news/")  # already there for site 1
    add_ignored(3, 10, "^(?!private)")  # a lookahead: RE2 cannot run it
    add_ignored(4, 10, "^(unclosed")
    add_ignored(5, 10, "^shop/")
    add_ignored(6, 10, "^shop/")  # a duplicate inside their own table
    out = run()
    assert "Skipped Ignored URL 1 '^/help/' (site 1): already present." in out
    assert "Skipped Ignored URL 2 '^news/' (site 1): already present." in out
    assert "Skipped Ignored URL 3 '^(?!private)' (site 1): invalid (Enter a valid regular expression" in out
    assert "Skipped Ignored URL 4 '^(unclosed' (site 1): invalid (" in out
    assert "Ignored URL 5 '^shop/' (site 1): imported." in out
    assert "Skipped Ignored URL 6 '^shop/' (site 1): already present." in out
    assert "Ignored URLs: 1 imported, 3 duplicate(s) skipped, 2 invalid skipped." in out
    assert IgnoredURL.objects.filter(pattern="^shop/", site_id=1).count() == 1
    assert not active("maintenance_mode_site_1")
    assert "Site 1 (example.com): maintenance off: switch maintenance_mode_site_1 already off." in out


def test_rows_without_a_site_are_skipped(legacy: None) -> None:
    add_maintenance(10, 1, True)
    add_maintenance(12, 999, True)  # its Site was deleted behind the app's back
    add_ignored(1, 12, "^gone/")
    add_ignored(2, 77, "^orphan/")  # no Maintenance row 77
    out = run()
    assert "Skipped Maintenance row 12: no Site with id 999." in out
    assert "Skipped Ignored URL 1 '^gone/': no Site with id 999." in out
    assert "Skipped Ignored URL 2 '^orphan/': its Maintenance row does not exist." in out
    assert "Rows without a Site skipped: 3." in out
    assert active("maintenance_mode_site_1")
    assert not Switch.objects.filter(name="maintenance_mode_site_999").exists()
    assert IgnoredURL.objects.count() == 0
