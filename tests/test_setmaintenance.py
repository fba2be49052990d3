from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sites.models import Site
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.test import override_settings
from waffle.models import Switch

from maintenance_flags.audit import acting
from maintenance_flags.models import MaintenanceEvent, MaintenanceWindow, SwitchDetail
from maintenance_flags.signals import maintenance_started
from maintenance_flags.switches import set_switch
from tests.utils import active, run

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db


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


def test_usage_does_not_require_site_ids() -> None:
    with pytest.raises(CommandError) as excinfo:
        call_command("setmaintenance")
    assert str(excinfo.value) == "Error: the following arguments are required: action"


# --- bad input: a clear CommandError, never a traceback -------------------------------------------


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["on", "--for", "99999999999d"], "--for: '99999999999d' is too long: the end would be after the year 9999"),
        (["on", "--for", "9999999d"], "too long"),
        (["on", "--until", "10000-01-01T00:00Z"], "--until: '10000-01-01T00:00Z' is outside the years 1 to 9999"),
        (["on", "--until", "9999-12-31T23:59:59-05:00"], "outside the years 1 to 9999"),
        (["readonly", "on", "--for", "99999999999999999999999s"], "too long"),
        (["schedule", "--start", "0001-01-01T00:00+05:00"], "--start: .* outside the years 1 to 9999"),
        (["schedule", "--start", "2030-01-01T00:00Z", "--end", "9999-12-31T23:59-12:00"], "--end: .* outside"),
        (["on", "99999999999999999999"], "No Site with id 99999999999999999999: nothing was changed"),
        (["on", "-5"], "No Site with id -5"),
        (["history", "--limit", "-1"], "--limit must be a positive number"),
        (["history", "--limit", "0"], "--limit must be a positive number"),
    ],
)
def test_bad_input_is_a_command_error(args: list[str], error: str) -> None:
    with pytest.raises(CommandError, match=error):
        run(*args)
    assert not Switch.objects.filter(active=True).exists()
    assert not MaintenanceEvent.objects.exists()


def test_history_limit_larger_than_the_database_integers() -> None:
    run("on")
    assert len(run("history", "--limit", str(10**30)).splitlines()) == 1


@pytest.mark.parametrize("action", ["status", "history"])
def test_read_only_actions_do_not_say_nothing_was_changed(action: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        run(action, "99", "123456789012345678901234567890")
    assert str(excinfo.value) == "No Site with id 99, 123456789012345678901234567890."


# --- the database: not migrated, not reachable, no django.contrib.sites ----------------------------


@pytest.mark.django_db(transaction=True)  # DDL commits on MariaDB
def test_before_migrate_says_run_migrate() -> None:
    table = Switch._meta.db_table
    with connection.schema_editor() as editor:
        editor.alter_db_table(Switch, table, "mf_test_moved_switch")
    try:
        with pytest.raises(CommandError, match=rf"^The database has no table {table} yet: run `manage.py migrate`\.$"):
            run("on")
    finally:
        with connection.schema_editor() as editor:
            editor.alter_db_table(Switch, "mf_test_moved_switch", table)
    assert "already off" in run("off")


def test_database_that_cannot_be_reached() -> None:
    def refuse(*args: Any) -> None:
        raise OperationalError("could not connect to server: Connection refused")

    with connection.execute_wrapper(refuse), pytest.raises(CommandError) as excinfo:
        run("status")
    assert str(excinfo.value) == "Database error: could not connect to server: Connection refused"


def test_without_django_contrib_sites() -> None:
    without_sites = [app for app in settings.INSTALLED_APPS if app != "django.contrib.sites"]
    with override_settings(INSTALLED_APPS=without_sites), pytest.raises(CommandError) as excinfo:
        run("status")
    assert str(excinfo.value) == (
        "django.contrib.sites is not in INSTALLED_APPS: add it (system check maintenance_flags.E002)."
    )


WITHOUT_SITES = """
SECRET_KEY = "x"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "waffle", "maintenance_flags"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
"""


@pytest.mark.servers  # starts a manage.py process
@pytest.mark.parametrize(
    ("options", "says"), [(["--skip-checks"], "system check maintenance_flags.E002"), ([], "E002")]
)
def test_without_django_contrib_sites_in_a_project(tmp_path: Path, options: list[str], says: str) -> None:
    """The command module imports without django.contrib.sites: the check's advice, not a traceback."""
    (tmp_path / "without_sites.py").write_text(WITHOUT_SITES)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "without_sites",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "django", "setmaintenance", "status", *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert says in result.stderr
    assert "Traceback" not in result.stderr


# --- a repeated `on` with a new end or message -------------------------------------------------------


def test_repeated_on_applies_a_new_end_and_message_and_records_it() -> None:
    started: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        started.append(kwargs)

    run("on", "--until", "2099-01-01T00:00Z")
    maintenance_started.connect(receiver)
    try:
        out = run("on", "--until", "2099-06-01T00:00Z", "--message", "Back in June")
    finally:
        maintenance_started.disconnect(receiver)
    update = "planned end now 2099-06-01T00:00:00+00:00, message updated"
    assert out.splitlines()[0] == f"1 example.com already on; {update}"
    detail = SwitchDetail.objects.get(switch_name="maintenance_mode_site_1")
    assert (detail.ends_at.isoformat() if detail.ends_at else None, detail.message) == (
        "2099-06-01T00:00:00+00:00",
        "Back in June",
    )
    event = MaintenanceEvent.objects.first()
    assert event is not None
    assert (event.site_id, event.active, event.previous, event.readonly) == (1, True, True, False)
    assert (event.source, event.reason) == ("command", update)
    assert started == []  # maintenance neither started nor ended
    assert run("history").splitlines()[0].endswith(f" 1 example.com on (command) — {update}")


def test_repeated_plain_on_keeps_the_end_and_records_nothing() -> None:
    run("on", "--until", "2099-01-01T00:00Z", "--message", "soon")
    assert run("on").splitlines()[0] == "1 example.com already on"
    assert run("on", "--message", "soon").splitlines()[0] == "1 example.com already on"  # nothing new
    assert MaintenanceEvent.objects.count() == 1
    detail = SwitchDetail.objects.get(switch_name="maintenance_mode_site_1")
    assert detail.ends_at is not None and detail.ends_at.year == 2099


def test_repeated_readonly_on_and_all_with_a_reason() -> None:
    run("readonly", "on")
    out = run("readonly", "on", "--message", "Read-only for the import", "--reason", "import")
    assert out.splitlines()[0] == "1 example.com already read-only on; message updated"
    event = MaintenanceEvent.objects.first()
    assert event is not None and event.readonly and event.reason == "import (message updated)"
    run("on", "--all")
    out = run("on", "--all", "--until", "2099-01-01T00:00Z")
    assert out.splitlines()[0] == "all every site already on; planned end now 2099-01-01T00:00:00+00:00"
    event = MaintenanceEvent.objects.first()
    assert event is not None and event.site_id is None and event.switch_name == "maintenance_mode_all_sites"


# --- history ---------------------------------------------------------------------------------------


def test_history_names_the_source_and_the_user_when_there_is_one(django_user_model: Any) -> None:
    run("on", "--reason", "deploy 42")
    call_command("waffle_switch", "maintenance_mode_site_1", "off", stdout=StringIO())
    with acting("admin", user=django_user_model.objects.create_user("alice")):
        set_switch("maintenance_mode_site_1", True)
    lines = run("history").splitlines()
    assert lines[0].endswith(" 1 example.com on (admin, alice)")
    assert lines[1].endswith(" 1 example.com off (switch)")
    assert lines[2].endswith(" 1 example.com on (command) — deploy 42")


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
