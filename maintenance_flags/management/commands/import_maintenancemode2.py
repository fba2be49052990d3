"""``manage.py import_maintenancemode2 [--dry-run]``: bring over django-maintenancemode-2's state.

django-maintenancemode-2 (app label ``maintenancemode``) keeps one ``Maintenance`` row per
Site (``site_id``, ``is_being_performed``) in the table ``maintenancemode_maintenance``, and
its ignored URL patterns in ``maintenancemode_ignoredurl`` (``pattern``, ``description`` and
``maintenance_id``, a foreign key to the Maintenance row and so to a Site).

The tables are read with plain SQL, so that app need not be installed (it does not run on
current Django versions). Each Site's maintenance flag becomes the state of its switch
``maintenance_mode_site_<id>``; each pattern becomes an ``IgnoredURL`` for the same Site.
Running the command again changes nothing: switches already in the imported state and
patterns already present (for that Site or for every site) are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.sites.models import Site
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from maintenance_flags.audit import acting
from maintenance_flags.exemptions import normalise_pattern
from maintenance_flags.models import IgnoredURL
from maintenance_flags.names import site_switch_name, switch_model
from maintenance_flags.switches import set_switch

MAINTENANCE_TABLE = "maintenancemode_maintenance"
IGNORED_URL_TABLE = "maintenancemode_ignoredurl"


@dataclass(frozen=True)
class LegacyMaintenance:
    row_id: int
    site_id: int
    on: bool


@dataclass(frozen=True)
class LegacyIgnoredURL:
    row_id: int
    site_id: int | None  # None: its Maintenance row is gone
    pattern: str
    description: str


@dataclass
class Tally:
    switches_changed: int = 0
    switches_unchanged: int = 0
    imported: int = 0
    duplicates: int = 0
    invalid: int = 0
    orphans: int = 0


class Command(BaseCommand):
    help = (
        "Import django-maintenancemode-2's state (per-site maintenance flags and ignored URLs) "
        "from its tables in the default database. Safe to run more than once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would be imported without changing anything."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        maintenance_rows, ignored_rows = read_legacy_tables()
        self.stdout.write(
            f"Found {len(maintenance_rows)} Maintenance row(s) and {len(ignored_rows)} IgnoredURL row(s) "
            "in django-maintenancemode-2's tables."
        )
        sites = Site.objects.in_bulk([row.site_id for row in maintenance_rows])
        tally = Tally()
        with transaction.atomic():
            for row in maintenance_rows:
                self._import_maintenance(row, sites, dry_run, tally)
            seen = existing_patterns()
            for ignored in ignored_rows:
                self._import_ignored(ignored, sites, seen, dry_run, tally)
        self._summary(tally, dry_run)

    # --- Maintenance rows → switches ---------------------------------------------------

    def _import_maintenance(self, row: LegacyMaintenance, sites: dict[int, Site], dry_run: bool, tally: Tally) -> None:
        site = sites.get(row.site_id)
        state = "on" if row.on else "off"
        if site is None:
            tally.orphans += 1
            self.stdout.write(f"Skipped Maintenance row {row.row_id}: no Site with id {row.site_id}.")
            return
        name = site_switch_name(site.pk)
        current = switch_model().objects.filter(name=name).values_list("active", flat=True).first()
        label = f"Site {site.pk} ({site.domain}): maintenance {state}"
        if current is not None and bool(current) == row.on:
            tally.switches_unchanged += 1
            self.stdout.write(f"{label}: switch {name} already {state}.")
            return
        tally.switches_changed += 1
        if dry_run:
            self.stdout.write(f"{label}: would turn switch {name} {state}.")
            return
        with acting("command", reason="imported from django-maintenancemode-2"):
            set_switch(name, row.on)
        self.stdout.write(f"{label}: switch {name} turned {state}.")

    # --- IgnoredURL rows → IgnoredURL ---------------------------------------------------

    def _import_ignored(
        self,
        row: LegacyIgnoredURL,
        sites: dict[int, Site],
        seen: set[tuple[int | None, str]],
        dry_run: bool,
        tally: Tally,
    ) -> None:
        label = f"Ignored URL {row.row_id} {row.pattern!r}"
        if row.site_id is None:
            tally.orphans += 1
            self.stdout.write(f"Skipped {label}: its Maintenance row does not exist.")
            return
        site = sites.get(row.site_id)
        if site is None:
            tally.orphans += 1
            self.stdout.write(f"Skipped {label}: no Site with id {row.site_id}.")
            return
        label = f"{label} (site {site.pk})"
        key = normalise_pattern(row.pattern)
        if (site.pk, key) in seen or (None, key) in seen:
            tally.duplicates += 1
            self.stdout.write(f"Skipped {label}: already present.")
            return
        candidate = IgnoredURL(pattern=row.pattern, site=site, description=row.description[:255])
        try:
            candidate.full_clean()
        except ValidationError as exc:
            tally.invalid += 1
            self.stdout.write(f"Skipped {label}: invalid ({'; '.join(exc.messages)}).")
            return
        seen.add((site.pk, key))
        tally.imported += 1
        if dry_run:
            self.stdout.write(f"{label}: would import.")
            return
        candidate.save()
        self.stdout.write(f"{label}: imported.")

    def _summary(self, tally: Tally, dry_run: bool) -> None:
        verb = "would change" if dry_run else "changed"
        imported = "would import" if dry_run else "imported"
        self.stdout.write(
            f"Switches: {tally.switches_changed} {verb}, {tally.switches_unchanged} already right. "
            f"Ignored URLs: {tally.imported} {imported}, {tally.duplicates} duplicate(s) skipped, "
            f"{tally.invalid} invalid skipped. Rows without a Site skipped: {tally.orphans}."
        )
        if dry_run:
            self.stdout.write("Dry run: nothing was changed.")


def read_legacy_tables(using: str = DEFAULT_DB_ALIAS) -> tuple[list[LegacyMaintenance], list[LegacyIgnoredURL]]:
    """Read django-maintenancemode-2's rows, or raise CommandError if its tables are missing."""
    connection = connections[using]
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
    missing = [name for name in (MAINTENANCE_TABLE, IGNORED_URL_TABLE) if name not in tables]
    if missing:
        raise CommandError(
            f"django-maintenancemode-2's table(s) {', '.join(missing)} do not exist in the "
            f"{using!r} database: there is nothing to import. (Run this before removing that app's "
            "tables, against the database that has them.)"
        )
    quote = connection.ops.quote_name
    maintenance, ignored = quote(MAINTENANCE_TABLE), quote(IGNORED_URL_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, site_id, is_being_performed FROM {maintenance} ORDER BY site_id, id")
        maintenance_rows = [LegacyMaintenance(int(i), int(s), bool(on)) for i, s, on in cursor.fetchall()]
        cursor.execute(
            f"SELECT i.id, m.site_id, i.pattern, i.description FROM {ignored} i "
            f"LEFT JOIN {maintenance} m ON m.id = i.maintenance_id ORDER BY i.id"
        )
        ignored_rows = [
            LegacyIgnoredURL(int(i), None if s is None else int(s), str(pattern), str(description or ""))
            for i, s, pattern, description in cursor.fetchall()
        ]
    return maintenance_rows, ignored_rows


def existing_patterns() -> set[tuple[int | None, str]]:
    """(site id or None, normalised pattern) of every IgnoredURL already in our table."""
    return {
        (site_id, normalise_pattern(pattern))
        for site_id, pattern in IgnoredURL.objects.values_list("site_id", "pattern")
    }
