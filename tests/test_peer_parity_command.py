"""Peer parity from the command line: ``setmaintenance on --redirect/--refresh``, ``status --json``'s
``redirect``/``refresh``, and ``import_maintenance_mode`` (django-maintenance-mode's state and settings)."""

from __future__ import annotations

import json
import sys
import types
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from maintenance_flags.management.commands.import_maintenance_mode import REASON, SETTINGS_MAP, state_file_path
from maintenance_flags.models import MaintenanceEvent, MaintenanceWindow, SwitchDetail
from maintenance_flags.switch_options import redirect_target, refresh_seconds
from maintenance_flags.switches import set_switch
from tests.utils import switch_detail, switch_on

pytestmark = pytest.mark.django_db

SITE = "maintenance_mode_site_1"
GLOBAL = "maintenance_mode_all_sites"


def run(*args: str, command: str = "setmaintenance") -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def status() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(run("status", "--json"))
    return document


def detail(name: str = SITE) -> tuple[str, int | None]:
    return switch_detail(name)


# --- setmaintenance on --redirect / --refresh -----------------------------------------------


def test_on_with_redirect_and_refresh_per_site() -> None:
    out = run("on", "--redirect", "/status/", "--refresh", "30")
    assert out.splitlines()[0] == "1 example.com on (site switch)"  # the status lines are unchanged
    assert detail() == ("/status/", 30)
    row = status()["sites"][0]
    assert (row["redirect"], row["refresh"]) == ("/status/", 30)
    assert (status()["all_sites"]["redirect"], status()["all_sites"]["refresh"]) == (None, None)
    response = Client().get("/")
    assert (response.status_code, response["Location"]) == (302, "/status/")


def test_on_all_with_an_absolute_redirect() -> None:
    run("on", "--all", "--redirect", "https://status.example.com/", "--refresh", "60")
    assert detail(GLOBAL) == ("https://status.example.com/", 60)
    assert not switch_on(SITE)
    document = status()
    assert document["all_sites"] == {
        "on": True,
        "ends_at": None,
        "message": "",
        "redirect": "https://status.example.com/",
        "refresh": 60,
    }
    assert (document["sites"][0]["redirect"], document["sites"][0]["refresh"]) == ("https://status.example.com/", 60)


def test_kept_with_the_message_and_end_and_recorded_when_changed() -> None:
    run("on", "--message", "Upgrading", "--for", "1h")
    out = run("on", "--redirect", "/status/", "--refresh", "15")
    assert "1 example.com already on; redirect to /status/, refresh every 15 s" in out
    row = SwitchDetail.objects.get(switch_name=SITE)
    assert (row.message, row.redirect_url, row.refresh) == ("Upgrading", "/status/", 15)
    assert row.ends_at is not None
    event = MaintenanceEvent.objects.get(previous=True)
    assert (event.source, event.reason) == ("command", "redirect to /status/, refresh every 15 s")
    assert run("on").splitlines()[0] == "1 example.com already on"  # nothing given: kept
    assert detail() == ("/status/", 15)


def test_empty_redirect_and_zero_refresh_remove_them() -> None:
    run("on", "--redirect", "/status/", "--refresh", "15")
    out = run("on", "--redirect", "", "--refresh", "0")
    assert "already on; no redirect, no refresh" in out
    assert detail() == ("", None)
    assert (status()["sites"][0]["redirect"], status()["sites"][0]["refresh"]) == (None, None)


def test_off_clears_them() -> None:
    run("on", "--redirect", "/status/", "--refresh", "15")
    run("off")
    run("on")
    assert detail() == ("", None)


@pytest.mark.parametrize("value", ["status", "//evil.example/", "javascript:alert(1)", "ftp://example.com/", " / x"])
def test_an_invalid_redirect_is_refused_and_changes_nothing(value: str) -> None:
    with pytest.raises(CommandError, match=r"^--redirect: .* is not a path starting with / or an absolute http"):
        run("on", "--redirect", value)
    assert not switch_on(SITE)


@pytest.mark.parametrize("value", ["abc", "-1", "86401", "1.5", "+5", "\u0663", "1e3"])
def test_an_invalid_refresh_is_refused_and_changes_nothing(value: str) -> None:
    with pytest.raises(CommandError, match=r"^--refresh: .* is not a whole number of seconds from 1 to 86400\.$"):
        run("on", "--all", "--refresh", value)
    assert not switch_on(GLOBAL)


def test_the_longest_refresh_is_a_day() -> None:
    run("on", "--refresh", "86400")
    assert detail() == ("", 86400)


@pytest.mark.parametrize(
    ("args", "action"),
    [
        (["off", "--redirect", "/x/"], "off"),
        (["readonly", "on", "--redirect", "/x/"], "readonly on"),
        (["readonly", "off", "--refresh", "5"], "readonly off"),
        (["status", "--refresh", "5"], "status"),
        (["schedule", "--start", "2099-01-01T00:00Z", "--redirect", "/x/"], "schedule"),
    ],
)
def test_only_on_takes_them(args: list[str], action: str) -> None:
    with pytest.raises(CommandError, match=f"--redirect and --refresh go with `on` only, not `{action}`"):
        run(*args)
    assert not SwitchDetail.objects.exists()
    assert not MaintenanceWindow.objects.exists()


def test_status_json_falls_back_to_the_settings_while_down(settings: Any) -> None:
    settings.MAINTENANCE_REDIRECT_URL = "/down/"
    settings.MAINTENANCE_REFRESH = 20
    document = status()
    assert (document["sites"][0]["redirect"], document["sites"][0]["refresh"]) == (None, None)  # up
    assert (document["all_sites"]["redirect"], document["all_sites"]["refresh"]) == (None, None)
    run("on", "--refresh", "5")
    row = status()["sites"][0]
    assert (row["redirect"], row["refresh"]) == ("/down/", 5)  # per site over the setting
    run("on", "--all")
    assert (status()["all_sites"]["redirect"], status()["all_sites"]["refresh"]) == ("/down/", 20)


def test_readonly_rows_show_no_redirect(settings: Any) -> None:
    settings.MAINTENANCE_REDIRECT_URL = "/down/"
    run("readonly", "on")
    row = status()["sites"][0]
    assert row["readonly"] and (row["redirect"], row["refresh"]) == (None, None)


def test_option_values_are_trimmed() -> None:
    assert redirect_target("  /status/ ") == "/status/"
    assert redirect_target("") == ""
    assert refresh_seconds(" 30 ") == 30
    assert refresh_seconds("") == 0


# --- import_maintenance_mode --------------------------------------------------------------


def imported(*args: str) -> str:
    return run(*args, command="import_maintenance_mode")


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "maintenance_mode_state.txt"


@pytest.fixture
def no_legacy_settings(settings: Any) -> None:
    for name in [n for n in dir(settings) if n.startswith("MAINTENANCE_MODE")]:
        delattr(settings, name)


@pytest.mark.usefixtures("no_legacy_settings")
def test_import_on_turns_the_global_switch_on(state_file: Path) -> None:
    state_file.write_text("1\n")
    out = imported("--state-file", str(state_file))
    assert f"global switch {GLOBAL}: turned on." in out
    assert switch_on(GLOBAL)
    assert not switch_on(SITE)
    event = MaintenanceEvent.objects.get()
    assert (event.source, event.reason, event.active, event.site_id) == ("command", REASON, True, None)
    assert "No MAINTENANCE_MODE* setting found" in out
    assert f"global switch {GLOBAL}: already on." in imported("--state-file", str(state_file))
    assert MaintenanceEvent.objects.count() == 1


@pytest.mark.parametrize(("content", "on_before"), [("0", False), ("", False), ("0", True)])
def test_import_off_leaves_the_global_switch_alone(state_file: Path, content: str, on_before: bool) -> None:
    set_switch(GLOBAL, on_before)
    state_file.write_text(content)
    out = imported("--state-file", str(state_file))
    assert f"django-maintenance-mode is off: the global switch {GLOBAL} is left {'on' if on_before else 'off'}." in out
    assert switch_on(GLOBAL) is on_before


def test_dry_run_changes_nothing(state_file: Path) -> None:
    state_file.write_text("1")
    out = imported("--state-file", str(state_file), "--dry-run")
    assert f"global switch {GLOBAL}: would turn on." in out
    assert out.rstrip().endswith("Dry run: nothing was changed.")
    assert not switch_on(GLOBAL)
    set_switch(GLOBAL, True)
    assert f"{GLOBAL}: already on." in imported("--state-file", str(state_file), "--dry-run")


def test_a_schedule_under_way_becomes_on_with_a_planned_end(state_file: Path) -> None:
    end = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    state_file.write_text(json.dumps({"start": None, "end": end.isoformat()}))
    out = imported("--state-file", str(state_file), "--dry-run")
    assert f"would turn on until {end.isoformat()}." in out
    out = imported("--state-file", str(state_file))
    assert f"turned on until {end.isoformat()}." in out
    assert SwitchDetail.objects.get(switch_name=GLOBAL).ends_at == end
    later = end + timedelta(hours=1)
    state_file.write_text(json.dumps({"start": "2000-01-01T00:00:00+00:00", "end": later.isoformat()}))
    assert f"already on; would set the planned end to {later.isoformat()}." in imported(
        "--state-file", str(state_file), "--dry-run"
    )
    assert f"already on; planned end now {later.isoformat()}." in imported("--state-file", str(state_file))


def test_a_schedule_to_come_becomes_a_window(state_file: Path) -> None:
    start = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    state_file.write_text(json.dumps({"start": start.isoformat(), "end": None}))
    assert "would schedule a window for every site" in imported("--state-file", str(state_file), "--dry-run")
    assert not MaintenanceWindow.objects.exists()
    out = imported("--state-file", str(state_file))
    window = MaintenanceWindow.objects.get()
    assert f"from {start.isoformat()} to no planned end: scheduled window #{window.pk} for every site." in out
    assert (window.site_id, window.starts_at, window.ends_at) == (None, start, None)
    assert "already a window for every site" in imported("--state-file", str(state_file))
    assert MaintenanceWindow.objects.count() == 1
    assert not switch_on(GLOBAL)


def test_a_schedule_that_ended_changes_nothing(state_file: Path) -> None:
    state_file.write_text(json.dumps({"start": "2020-01-01T00:00:00+00:00", "end": "2020-01-01T02:00:00+00:00"}))
    assert "scheduled maintenance ended at 2020-01-01T02:00:00+00:00" in imported("--state-file", str(state_file))
    assert not switch_on(GLOBAL)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("yes", "expected 0, 1 or a schedule"),
        ("[1]", "expected 0, 1 or a schedule"),
        ('{"start": null, "end": null}', "expected 0, 1 or a schedule"),
        ('{"start": "2099-01-01T00:00Z", "until": "x"}', "expected 0, 1 or a schedule"),
        ('{"start": "2099-01-01T00:00Z",', "Expecting"),
        ('{"start": 5}', "5 is not an ISO-8601 date and time"),
        ('{"end": "tomorrow"}', "'tomorrow' is not an ISO-8601 date and time"),
        ('{"start": "2099-01-02T00:00Z", "end": "2099-01-01T00:00Z"}', "the schedule ends"),
    ],
)
def test_a_file_that_is_no_state_is_an_error(state_file: Path, content: str, error: str) -> None:
    state_file.write_text(content)
    with pytest.raises(
        CommandError, match=r"is not a django-maintenance-mode state file: .*" + error.replace("[", r"\[")
    ):
        imported("--state-file", str(state_file))
    assert not switch_on(GLOBAL)


def test_an_unreadable_state_file_is_an_error(tmp_path: Path, state_file: Path) -> None:
    with pytest.raises(CommandError, match="There is no django-maintenance-mode state file at"):
        imported("--state-file", str(state_file))
    with pytest.raises(CommandError, match="Cannot read django-maintenance-mode's state file"):
        imported("--state-file", str(tmp_path))  # a directory
    state_file.write_bytes(b"\xff\xfe1")
    with pytest.raises(CommandError, match="Cannot read django-maintenance-mode's state file"):
        imported("--state-file", str(state_file))


def test_the_state_file_setting_is_read(settings: Any, state_file: Path) -> None:
    settings.MAINTENANCE_MODE_STATE_FILE_PATH = str(state_file)
    out = imported()
    assert f"No state file at {state_file}: nothing to carry over" in out  # a message, not an error
    state_file.write_text("1")
    assert "turned on" in imported()
    assert switch_on(GLOBAL)


@pytest.mark.usefixtures("no_legacy_settings")
def test_the_default_state_file_is_next_to_the_settings_module(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = types.ModuleType("legacy_settings")
    module.__file__ = str(tmp_path / "legacy_settings.py")
    monkeypatch.setitem(sys.modules, "legacy_settings", module)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "legacy_settings")
    assert state_file_path() == tmp_path / "maintenance_mode_state.txt"
    settings.MAINTENANCE_MODE_STATE_FILE_NAME = "state.txt"
    assert state_file_path() == tmp_path / "state.txt"
    (tmp_path / "state.txt").write_text("1")
    assert "turned on" in imported()
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")
    settings.BASE_DIR = tmp_path / "base"
    assert state_file_path() == tmp_path / "base" / "state.txt"
    del settings.BASE_DIR
    assert state_file_path() is None
    assert "Cannot tell where django-maintenance-mode's state file is" in imported()


def test_the_maintenance_mode_setting_overrides_the_file(settings: Any, state_file: Path) -> None:
    settings.MAINTENANCE_MODE_STATE_FILE_PATH = str(state_file)
    state_file.write_text("0")
    settings.MAINTENANCE_MODE = True
    out = imported()
    assert "MAINTENANCE_MODE = True in settings overrides the state file: using it." in out
    assert switch_on(GLOBAL)
    settings.MAINTENANCE_MODE = None  # django-maintenance-mode's default: the file decides
    assert "is off: the global switch" in imported()


def test_another_state_backend_is_not_read(settings: Any) -> None:
    settings.MAINTENANCE_MODE_STATE_BACKEND = "maintenance_mode.backends.CacheBackend"
    out = imported()
    assert (
        "MAINTENANCE_MODE_STATE_BACKEND is 'maintenance_mode.backends.CacheBackend', which keeps no local file" in out
    )
    assert not switch_on(GLOBAL)


@pytest.mark.usefixtures("no_legacy_settings")
def test_each_setting_gets_its_replacement(settings: Any) -> None:
    settings.MAINTENANCE_MODE_STATE_FILE_PATH = "/nonexistent/maintenance_mode_state.txt"
    settings.MAINTENANCE_MODE_REDIRECT_URL = "/down/"
    settings.MAINTENANCE_MODE_LOGOUT_AUTHENTICATED_USER = True
    settings.MAINTENANCE_MODE_SOMETHING_NEW = 1
    lines = imported().splitlines()
    start = lines.index("Settings to replace by hand (this command changes none):")
    assert lines[start + 1 :] == [
        "  MAINTENANCE_MODE_LOGOUT_AUTHENTICATED_USER = True: MAINTENANCE_LOGOUT_USERS",
        "  MAINTENANCE_MODE_REDIRECT_URL = '/down/': MAINTENANCE_REDIRECT_URL (or setmaintenance on --redirect URL"
        " per site)",
        "  MAINTENANCE_MODE_SOMETHING_NEW = 1: no counterpart known: see docs/migrating.md",
        "  MAINTENANCE_MODE_STATE_FILE_PATH = '/nonexistent/maintenance_mode_state.txt': "
        + SETTINGS_MAP["MAINTENANCE_MODE_STATE_FILE_PATH"],
    ]


def test_the_settings_map_names_every_django_maintenance_mode_setting() -> None:
    # django-maintenance-mode 0.23's settings.py, plus the pre-0.19 name of GET_CONTEXT.
    names = {
        "MAINTENANCE_MODE",
        *(
            f"MAINTENANCE_MODE_{suffix}"
            for suffix in [
                "GET_CLIENT_IP_ADDRESS",
                "GET_AUTHENTICATED_USER",
                "GET_CONTEXT",
                "GET_TEMPLATE_CONTEXT",
                "IGNORE_ADMIN_SITE",
                "IGNORE_ANONYMOUS_USER",
                "IGNORE_AUTHENTICATED_USER",
                "IGNORE_IP_ADDRESSES",
                "IGNORE_STAFF",
                "IGNORE_SUPERUSER",
                "IGNORE_TESTS",
                "IGNORE_URLS",
                "LOGOUT_AUTHENTICATED_USER",
                "LOGOUT_STAFF_USER",
                "LOGOUT_SUPERUSER",
                "REDIRECT_URL",
                "RESPONSE_TYPE",
                "RETRY_AFTER",
                "STATE_BACKEND",
                "CACHE_BACKEND",
                "STATE_BACKEND_FALLBACK_VALUE",
                "STATE_FILE_NAME",
                "STATE_FILE_PATH",
                "STATUS_CODE",
                "TEMPLATE",
            ]
        ),
    }
    assert set(SETTINGS_MAP) == names


def test_no_backend_setting_means_the_local_file(state_file: Path, settings: Any) -> None:
    # The settings fixture only: mixed with @override_settings, its teardown restores the
    # decorator's settings object after the decorator has gone, and the override leaks.
    settings.MAINTENANCE_MODE_STATE_BACKEND = None
    settings.MAINTENANCE_MODE_STATE_FILE_PATH = str(state_file)
    state_file.write_text("1")
    assert "turned on" in imported()
