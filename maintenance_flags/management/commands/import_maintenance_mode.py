"""``manage.py import_maintenance_mode [--state-file PATH] [--dry-run]``: bring over
django-maintenance-mode's state, and say what replaces each of its settings.

django-maintenance-mode keeps one flag for the whole project in a state backend, by default
(``LocalFileBackend``) a text file: ``MAINTENANCE_MODE_STATE_FILE_PATH``, else
``MAINTENANCE_MODE_STATE_FILE_NAME`` (``maintenance_mode_state.txt``) in the directory of the
settings module (``DJANGO_SETTINGS_MODULE``). The file holds ``1`` (on) or ``0`` (off; an empty
file too) or, from 0.23, a schedule ``{"start": ISO-8601 or null, "end": ISO-8601 or null}``.
A ``MAINTENANCE_MODE`` setting of True or False overrides the file, there as here.

On becomes the global switch ``maintenance_mode_all_sites`` (with the schedule's end as its
planned end); a schedule still to come becomes a maintenance window for every site; off changes
nothing (the global switch is left as it is). Settings are never rewritten: for each
``MAINTENANCE_MODE*`` setting the command prints what to use instead. Safe to run more than once.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from maintenance_flags.audit import Acting, acting
from maintenance_flags.models import MaintenanceWindow
from maintenance_flags.names import ALL_SITES_SWITCH, switch_model
from maintenance_flags.switches import KEEP, schedule_window, write_switch
from maintenance_flags.times import parse_when

STATE_FILE_NAME = "maintenance_mode_state.txt"
LOCAL_FILE_BACKEND = "maintenance_mode.backends.LocalFileBackend"
REASON = "imported from django-maintenance-mode"

_NOT_NEEDED = "not needed: the state is waffle switches in the database; remove it"
_LET_THROUGH = (
    "no counterpart: let people through by IP (MAINTENANCE_ALLOWED_IPS), URL (IgnoredURL, "
    "MAINTENANCE_IGNORED_URL_NAMES), staff status or a bypass link (setmaintenance bypass)"
)
_CONTEXT = "your TEMPLATES context processors (the page is rendered with the request)"
#: What replaces each django-maintenance-mode setting (docs/migrating.md has the same table).
SETTINGS_MAP = {
    "MAINTENANCE_MODE": "the state lives in the database: setmaintenance on|off --all, or the admin; remove it",
    "MAINTENANCE_MODE_STATE_BACKEND": _NOT_NEEDED,
    "MAINTENANCE_MODE_STATE_FILE_PATH": _NOT_NEEDED,
    "MAINTENANCE_MODE_STATE_FILE_NAME": _NOT_NEEDED,
    "MAINTENANCE_MODE_CACHE_BACKEND": _NOT_NEEDED,
    "MAINTENANCE_MODE_STATE_BACKEND_FALLBACK_VALUE": 'MAINTENANCE_FAIL_MODE ("closed" for True, "open" for False)',
    "MAINTENANCE_MODE_IGNORE_ADMIN_SITE": 'MAINTENANCE_ADMIN_IGNORED_URLS (default ["^admin"]; [] blocks the admin)',
    "MAINTENANCE_MODE_IGNORE_ANONYMOUS_USER": _LET_THROUGH,
    "MAINTENANCE_MODE_IGNORE_AUTHENTICATED_USER": _LET_THROUGH,
    "MAINTENANCE_MODE_IGNORE_STAFF": "staff and superusers get through by default; MAINTENANCE_BLOCK_STAFF = True "
    "blocks both",
    "MAINTENANCE_MODE_IGNORE_SUPERUSER": "staff and superusers get through by default; MAINTENANCE_BLOCK_STAFF = True "
    "blocks both",
    "MAINTENANCE_MODE_IGNORE_IP_ADDRESSES": "MAINTENANCE_ALLOWED_IPS (addresses and CIDR networks, not regexes)",
    "MAINTENANCE_MODE_GET_CLIENT_IP_ADDRESS": "MAINTENANCE_TRUSTED_PROXIES (X-Forwarded-For is read through them)",
    "MAINTENANCE_MODE_GET_AUTHENTICATED_USER": "no setting: request.user (or request.auser()) as your "
    "authentication middleware sets it; put it before ours",
    "MAINTENANCE_MODE_IGNORE_URLS": "IgnoredURL rows (admin) or MAINTENANCE_ADMIN_IGNORED_URLS (regexes too), "
    "MAINTENANCE_IGNORED_URL_NAMES or @maintenance_exempt",
    "MAINTENANCE_MODE_IGNORE_TESTS": "maintenance_flags.testutils.override_maintenance(on=False) in tests",
    "MAINTENANCE_MODE_REDIRECT_URL": "MAINTENANCE_REDIRECT_URL (or setmaintenance on --redirect URL per site)",
    "MAINTENANCE_MODE_STATUS_CODE": "MAINTENANCE_STATUS_CODE",
    "MAINTENANCE_MODE_RETRY_AFTER": "MAINTENANCE_RETRY_AFTER",
    "MAINTENANCE_MODE_LOGOUT_AUTHENTICATED_USER": "MAINTENANCE_LOGOUT_USERS",
    "MAINTENANCE_MODE_LOGOUT_STAFF_USER": "no counterpart: staff get through (so stay signed in) unless "
    "MAINTENANCE_BLOCK_STAFF; then MAINTENANCE_LOGOUT_USERS applies",
    "MAINTENANCE_MODE_LOGOUT_SUPERUSER": "no counterpart: superusers get through (so stay signed in) unless "
    "MAINTENANCE_BLOCK_STAFF; then MAINTENANCE_LOGOUT_USERS applies",
    "MAINTENANCE_MODE_TEMPLATE": "MAINTENANCE_503_TEMPLATE",
    "MAINTENANCE_MODE_GET_CONTEXT": _CONTEXT,
    "MAINTENANCE_MODE_GET_TEMPLATE_CONTEXT": _CONTEXT,
    "MAINTENANCE_MODE_RESPONSE_TYPE": "no setting: HTML, or application/problem+json when Accept prefers JSON",
}


@dataclass(frozen=True)
class LegacyState:
    on: bool
    start: datetime | None = None
    end: datetime | None = None


class Command(BaseCommand):
    help = (
        "Import django-maintenance-mode's state (its state file, or the MAINTENANCE_MODE setting) as the "
        "global switch, and print what replaces each MAINTENANCE_MODE* setting. Safe to run more than once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--state-file",
            metavar="PATH",
            help="django-maintenance-mode's state file (default: MAINTENANCE_MODE_STATE_FILE_PATH, else "
            f"{STATE_FILE_NAME} next to the settings module).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would be imported without changing anything."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        state = self._read(options["state_file"])
        if state is not None:
            with transaction.atomic():
                self._apply(state, dry_run)
        self._settings_map()
        if dry_run:
            self.stdout.write("Dry run: nothing was changed.")

    # --- the state ---------------------------------------------------------------------

    def _read(self, given: str | None) -> LegacyState | None:
        if given is not None:
            return read_state_file(Path(given), required=True)
        setting = getattr(settings, "MAINTENANCE_MODE", None)
        if isinstance(setting, bool):
            self.stdout.write(f"MAINTENANCE_MODE = {setting} in settings overrides the state file: using it.")
            return LegacyState(setting)
        backend = getattr(settings, "MAINTENANCE_MODE_STATE_BACKEND", None) or LOCAL_FILE_BACKEND
        if backend != LOCAL_FILE_BACKEND:
            self.stdout.write(
                f"MAINTENANCE_MODE_STATE_BACKEND is {backend!r}, which keeps no local file: nothing read. "
                "If django-maintenance-mode is on, run `setmaintenance on --all` (or give --state-file)."
            )
            return None
        path = state_file_path()
        if path is None:
            self.stdout.write(
                "Cannot tell where django-maintenance-mode's state file is (no DJANGO_SETTINGS_MODULE module "
                "file, no BASE_DIR): give --state-file."
            )
            return None
        state = read_state_file(path, required=False)
        if state is None:
            self.stdout.write(
                f"No state file at {path}: nothing to carry over (django-maintenance-mode reads that as off). "
                "Give --state-file if it is elsewhere."
            )
        return state

    def _apply(self, state: LegacyState, dry_run: bool) -> None:
        now = timezone.now()
        active = switch_model().objects.filter(name=ALL_SITES_SWITCH, active=True).exists()
        if not state.on:
            self.stdout.write(
                f"django-maintenance-mode is off: the global switch {ALL_SITES_SWITCH} is left "
                f"{'on' if active else 'off'}."
            )
        elif state.end is not None and state.end <= now:
            self.stdout.write(f"django-maintenance-mode's scheduled maintenance ended at {state.end.isoformat()}.")
        elif state.start is not None and state.start > now:
            self._schedule(state.start, state.end, dry_run)
        else:
            self._turn_on(state.end, active, dry_run)

    def _turn_on(self, end: datetime | None, active: bool, dry_run: bool) -> None:
        until = f" until {end.isoformat()}" if end else ""
        if dry_run and not active:
            text = f"would turn on{until}"
        elif dry_run:
            text = f"already on; would set the planned end to {end.isoformat()}" if end else "already on"
        else:
            actor = Acting("command", reason=REASON)
            with acting(actor.source, reason=actor.reason):  # turned on: recorded as; updated: record_as
                written = write_switch(ALL_SITES_SWITCH, True, ends_at=end if end else KEEP, record_as=actor)
            text = f"turned on{until}" if written.changed else "; ".join(("already on", *written.updated))
        self.stdout.write(f"django-maintenance-mode is on: global switch {ALL_SITES_SWITCH}: {text}.")

    def _schedule(self, start: datetime, end: datetime | None, dry_run: bool) -> None:
        what = f"django-maintenance-mode's schedule from {start.isoformat()} to "
        what += end.isoformat() if end else "no planned end"
        if MaintenanceWindow.objects.filter(site__isnull=True, starts_at=start, ends_at=end).exists():
            self.stdout.write(f"{what}: already a window for every site.")
        elif dry_run:
            self.stdout.write(f"{what}: would schedule a window for every site.")
        else:
            window = schedule_window(None, start, end)
            self.stdout.write(f"{what}: scheduled window #{window.pk} for every site.")

    # --- the settings --------------------------------------------------------------------

    def _settings_map(self) -> None:
        names = sorted(name for name in dir(settings) if name.startswith("MAINTENANCE_MODE"))
        if not names:
            self.stdout.write("No MAINTENANCE_MODE* setting found: no setting to replace.")
            return
        self.stdout.write("Settings to replace by hand (this command changes none):")
        for name in names:
            hint = SETTINGS_MAP.get(name, "no counterpart known: see docs/migrating.md")
            self.stdout.write(f"  {name} = {getattr(settings, name)!r}: {hint}")


def state_file_path() -> Path | None:
    """Where django-maintenance-mode's ``LocalFileBackend`` keeps its state, as it works it out."""
    configured = getattr(settings, "MAINTENANCE_MODE_STATE_FILE_PATH", None)
    if configured:
        return Path(configured)
    name = getattr(settings, "MAINTENANCE_MODE_STATE_FILE_NAME", None) or STATE_FILE_NAME
    module = sys.modules.get(os.environ.get("DJANGO_SETTINGS_MODULE", ""))
    module_file = getattr(module, "__file__", None)
    if module_file:
        return Path(module_file).parent / name
    base_dir = getattr(settings, "BASE_DIR", None)
    return Path(base_dir) / name if base_dir else None


def read_state_file(path: Path, required: bool) -> LegacyState | None:
    """The state in the file; None if it does not exist and is not ``required`` (else CommandError)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not required:
            return None
        raise CommandError(f"There is no django-maintenance-mode state file at {path}.") from None
    except (OSError, ValueError) as exc:
        raise CommandError(f"Cannot read django-maintenance-mode's state file {path}: {exc}") from None
    try:
        return parse_state(text)
    except ValueError as exc:
        raise CommandError(f"{path} is not a django-maintenance-mode state file: {exc}") from None


def parse_state(text: str) -> LegacyState:
    """``1``, ``0`` (or nothing) or ``{"start": …, "end": …}``; ValueError otherwise."""
    value = text.strip() or "0"
    if value in ("0", "1"):
        return LegacyState(value == "1")
    data = json.loads(value) if value.startswith("{") else None  # a JSONDecodeError is a ValueError
    if not isinstance(data, dict) or not set(data) <= {"start", "end"} or not (data.get("start") or data.get("end")):
        raise ValueError(f"expected 0, 1 or a schedule {{'start': ..., 'end': ...}}, found {value[:60]!r}")
    start, end = (_when(data.get(key)) for key in ("start", "end"))
    if start is not None and end is not None and end <= start:
        raise ValueError(f"the schedule ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return LegacyState(True, start, end)


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO-8601 date and time")
    return parse_when(value)
