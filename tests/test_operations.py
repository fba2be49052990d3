"""Scheduled windows, planned ends, messages, read-only mode, status --json/--check, history."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command
from django.test import AsyncClient, Client
from django.utils import timezone
from waffle.models import Switch

from maintenance_flags.models import MaintenanceEvent, MaintenanceWindow, SwitchDetail
from maintenance_flags.schedule import record_transitions
from maintenance_flags.snapshot import load_snapshot
from maintenance_flags.state import state_for_site_id
from maintenance_flags.store import store
from maintenance_flags.times import parse_duration, parse_when
from tests.utils import run

pytestmark = pytest.mark.django_db


def window(minutes_from_now: float, minutes_long: float | None, site_id: int | None = 1, message: str = "") -> Any:
    now = timezone.now()
    start = now + timedelta(minutes=minutes_from_now)
    end = start + timedelta(minutes=minutes_long) if minutes_long is not None else None
    return MaintenanceWindow.objects.create(site_id=site_id, starts_at=start, ends_at=end, message=message)


# --- windows -----------------------------------------------------------------------------------


@pytest.mark.parametrize("site_id", [1, None])
def test_open_window_puts_site_in_maintenance(site_id: int | None) -> None:
    window(-1, 30, site_id=site_id, message="Database upgrade")
    response = Client().get("/")
    assert response.status_code == 503
    assert 1730 <= int(response["Retry-After"]) <= 1740
    assert b"Database upgrade" in response.content
    assert "1 example.com on (window)" in run("status")


def test_window_for_another_site_does_not_apply() -> None:
    from django.contrib.sites.models import Site

    other = Site.objects.create(domain="other.example", name="Other")
    window(-1, 30, site_id=other.pk)
    assert Client().get("/").status_code == 200


def test_window_opens_and_closes_on_time_without_a_refresh(clock: list[datetime]) -> None:
    window(1, 2)
    client = Client()
    assert client.get("/").status_code == 200
    clock[0] += timedelta(minutes=1, seconds=1)
    assert client.get("/").status_code == 503  # same memoised snapshot, computed per request
    clock[0] += timedelta(minutes=2)
    assert client.get("/").status_code == 200


def test_open_ended_window_uses_retry_after_setting() -> None:
    window(-1, None)
    response = Client().get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "3600"


def test_window_transitions_are_recorded_once(clock: list[datetime]) -> None:
    from maintenance_flags.signals import maintenance_ended, maintenance_started

    received: list[tuple[str, dict[str, Any]]] = []

    def started(**kwargs: Any) -> None:
        received.append(("started", kwargs))

    def ended(**kwargs: Any) -> None:
        received.append(("ended", kwargs))

    maintenance_started.connect(started)
    maintenance_ended.connect(ended)
    try:
        w = window(1, 2, message="upgrade")
        clock[0] += timedelta(minutes=1, seconds=1)
        for _ in range(3):  # three refreshes, each handing the recorder what fell due
            record_transitions(load_snapshot())
        clock[0] += timedelta(minutes=3)
        for _ in range(3):
            record_transitions(load_snapshot())
    finally:
        maintenance_started.disconnect(started)
        maintenance_ended.disconnect(ended)
    assert [name for name, _ in received] == ["started", "ended"]
    assert received[0][1]["source"] == "schedule"
    assert received[0][1]["site"].pk == 1
    assert received[0][1]["reason"] == "upgrade"
    w.refresh_from_db()
    assert w.opened_at is not None and w.closed_at is not None
    events = list(MaintenanceEvent.objects.filter(source="schedule").order_by("pk").values_list("active", flat=True))
    assert events == [True, False]
    assert not load_snapshot().windows  # closed windows are no longer loaded


def test_window_validation() -> None:
    from django.core.exceptions import ValidationError

    now = timezone.now()
    with pytest.raises(ValidationError):
        MaintenanceWindow(starts_at=now, ends_at=now - timedelta(minutes=1)).full_clean()
    assert "all sites" in str(MaintenanceWindow(starts_at=now))


def test_schedule_command() -> None:
    out = run("schedule", "--start", "2030-01-01T02:00Z", "--end", "2030-01-01T03:00Z", "--message", "upgrade")
    assert "Scheduled window" in out
    w = MaintenanceWindow.objects.get()
    assert w.site_id == 1 and w.message == "upgrade"
    assert w.starts_at.isoformat() == "2030-01-01T02:00:00+00:00"
    run("schedule", "--all", "--start", "2030-01-01T02:00")
    assert MaintenanceWindow.objects.filter(site__isnull=True, ends_at__isnull=True).exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--end", "2030-01-01T03:00Z"], "needs --start"),
        (["--start", "2030-01-01T03:00Z", "--end", "2030-01-01T02:00Z"], "after --start"),
        (["--start", "tomorrow"], "not an ISO-8601"),
        (["--start", "2030-01-01T02:00Z", "99"], "No Site with id 99"),
    ],
)
def test_schedule_errors(args: list[str], error: str) -> None:
    with pytest.raises(CommandError, match=error):
        run("schedule", *args)
    assert not MaintenanceWindow.objects.exists()


def test_off_ends_windows_open_now() -> None:
    w = window(-1, 60)
    future = window(60, 60)
    assert Client().get("/").status_code == 503
    run("off")
    assert Client().get("/").status_code == 200
    w.refresh_from_db()
    future.refresh_from_db()
    assert w.ends_at is not None and w.ends_at <= timezone.now()
    assert future.ends_at is not None and future.ends_at > timezone.now()


def test_upcoming_window_banner_for_everyone(settings: Any) -> None:
    window(60, 90, message="Database upgrade")
    html = Client().get("/").content.decode()
    assert "Scheduled maintenance on" in html
    assert "Database upgrade" in html
    settings.MAINTENANCE_ANNOUNCE_BEFORE = 60
    store.invalidate()
    assert "Scheduled maintenance" not in Client().get("/").content.decode()


def test_upcoming_open_ended_window_banner() -> None:
    window(60, None)
    assert "Scheduled maintenance on" in Client().get("/").content.decode()


def test_upcoming_window_banner_in_french() -> None:
    window(60, 90)
    html = Client().get("/", headers={"Accept-Language": "fr"}).content.decode()
    assert "Maintenance programmée le" in html


# --- planned ends ------------------------------------------------------------------------------


def test_on_for_sets_a_planned_end(clock: list[datetime]) -> None:
    run("on", "--for", "30m")
    response = Client().get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "1800"
    assert json.loads(run("status", "--json"))["sites"][0]["ends_at"]
    clock[0] += timedelta(minutes=30, seconds=1)
    assert Client().get("/").status_code == 200  # reopens by itself, on time
    record_transitions(load_snapshot())  # the background step records the end, turns the switch off
    assert not Switch.objects.get(name="maintenance_mode_site_1").active
    event = MaintenanceEvent.objects.first()
    assert event is not None and event.source == "schedule" and not event.active
    assert not SwitchDetail.objects.exists()


def test_on_until() -> None:
    until = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    run("on", "--until", until.isoformat())
    assert SwitchDetail.objects.get(switch_name="maintenance_mode_site_1").ends_at == until
    assert 7100 < int(Client().get("/")["Retry-After"]) <= 7200


def test_repeating_on_keeps_the_planned_end() -> None:
    run("on", "--for", "1h")
    assert "already on" in run("on")
    assert SwitchDetail.objects.get(switch_name="maintenance_mode_site_1").ends_at is not None


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--for", "30x"], "not a duration"),
        (["--for", "0m"], "not a duration"),
        (["--until", "2001-01-01T00:00Z"], "in the past"),
        (["--for", "1h", "--until", "2099-01-01T00:00Z"], "not both"),
        (["--until", "soon"], "not an ISO-8601"),
    ],
)
def test_planned_end_errors(args: list[str], error: str) -> None:
    with pytest.raises(CommandError, match=error):
        run("on", *args)
    assert not Switch.objects.get(name="maintenance_mode_site_1").active


def test_off_with_for_is_an_error() -> None:
    with pytest.raises(CommandError, match="go with `on`"):
        run("off", "--for", "1h")


def test_latest_end_wins() -> None:
    run("on", "--for", "1h")
    window(-1, 120)
    assert 7100 < int(Client().get("/")["Retry-After"]) <= 7200


def test_time_parsing() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_when("2026-12-01T02:00Z").isoformat() == "2026-12-01T02:00:00+00:00"
    assert parse_when("2026-12-01 02:00").tzinfo is not None  # naive: TIME_ZONE
    with pytest.raises(ValueError, match="not an ISO-8601"):
        parse_when("2026-13-45T99:99")


# --- messages ----------------------------------------------------------------------------------


def test_message_everywhere(staff_client: Client) -> None:
    run("on", "--message", "Back at 02:00 UTC")
    response = Client().get("/")
    assert b"Back at 02:00 UTC" in response.content
    body = json.loads(Client().get("/", headers={"Accept": "application/json"}).content)
    assert body["detail"] == "Back at 02:00 UTC"
    assert "Back at 02:00 UTC" in staff_client.get("/").content.decode()  # the banner
    doc = json.loads(run("status", "--json"))
    assert doc["sites"][0]["message"] == "Back at 02:00 UTC"


def test_site_message_wins_over_global() -> None:
    run("on", "--all", "--message", "global-msg")
    run("on", "--message", "site-msg")
    page = Client().get("/").content
    assert b"site-msg" in page and b"global-msg" not in page
    run("off")
    assert b"global-msg" in Client().get("/").content


def test_turning_off_forgets_the_message() -> None:
    run("on", "--message", "old news")
    run("off")
    run("on")
    assert b"old news" not in Client().get("/").content


def test_message_is_escaped() -> None:
    run("on", "--message", "<script>alert(1)</script>")
    content = Client().get("/").content
    assert b"<script>alert(1)</script>" not in content
    assert b"&lt;script&gt;" in content


# --- read-only mode ----------------------------------------------------------------------------


@pytest.mark.parametrize("scope", [[], ["--all"]])
def test_readonly_blocks_unsafe_methods_only(scope: list[str]) -> None:
    run("readonly", "on", *scope)
    client = Client()
    assert client.get("/").status_code == 200
    assert client.head("/").status_code == 200
    assert client.options("/submit/").status_code == 200
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/submit/")
        assert response.status_code == 503, method
        assert response["X-Maintenance-Mode"] == "on"
        assert response["Retry-After"] == "3600"
    assert b"read-only mode" in client.post("/submit/").content
    problem = json.loads(client.post("/submit/", headers={"Accept": "application/json"}).content)
    assert "read-only" in problem["detail"]
    assert "read-only" in client.get("/").content.decode()  # the banner, for everyone
    run("readonly", "off", *scope)
    assert client.post("/submit/").status_code == 200


def test_readonly_async_stack() -> None:
    run("readonly", "on")
    assert async_to_sync(AsyncClient().get)("/async/").status_code == 200
    assert async_to_sync(AsyncClient().post)("/async/").status_code == 503


def test_readonly_exemptions(staff_client: Client) -> None:
    run("readonly", "on")
    assert staff_client.post("/submit/").status_code == 200
    assert Client().post("/admin/login/").status_code == 200


def test_readonly_status_and_check() -> None:
    run("readonly", "on")
    assert "1 example.com off (read-only)" in run("status")
    doc = json.loads(run("status", "--json"))
    assert doc["sites"][0]["readonly"] is True
    with pytest.raises(CommandError) as excinfo:
        run("status", "--check")
    assert excinfo.value.returncode == 1


def test_maintenance_wins_over_readonly() -> None:
    run("readonly", "on")
    run("on")
    assert Client().get("/").status_code == 503
    assert "1 example.com on (site switch)" in run("status")


@pytest.mark.parametrize("args", [[], ["sideways"]])
def test_readonly_usage(args: list[str]) -> None:
    with pytest.raises(CommandError, match="Usage"):
        run("readonly", *args)


# --- status --json / --check, history --------------------------------------------------------------


def test_status_json_document() -> None:
    run("on", "--all", "--for", "1h", "--message", "all down")
    doc = json.loads(run("status", "--json"))
    assert set(doc) == {"sites", "all_sites"}
    (site,) = doc["sites"]
    assert set(site) == {"id", "domain", "on", "reason", "ends_at", "message", "readonly", "redirect", "refresh"}
    assert site["id"] == 1 and site["on"] is True and site["reason"] == "global switch"
    assert doc["all_sites"]["on"] is True
    assert doc["all_sites"]["message"] == "all down"
    assert doc["all_sites"]["ends_at"].endswith("+00:00")


def test_status_check() -> None:
    assert "1 example.com off (off)" in run("status", "--check")
    run("on")
    with pytest.raises(CommandError, match="1 site"):
        run("status", "--check")


def test_history() -> None:
    run("on", "--reason", "deploy 42")
    run("off")
    call_command("waffle_switch", "maintenance_mode_site_1", "on", stdout=StringIO())
    lines = run("history").splitlines()
    assert len(lines) == 3
    assert "1 example.com on (switch)" in lines[0]
    assert "1 example.com off (command)" in lines[1]
    assert lines[2].endswith("1 example.com on (command) — deploy 42")
    assert len(run("history", "1").splitlines()) == 3
    run("on", "--all")
    assert "all - on" in run("history").splitlines()[0]


def test_effective_state_helper() -> None:
    window(-1, 10)
    state = state_for_site_id(load_snapshot(), 1)
    assert state.active and state.reason == "window" and state.ends_at is not None
