"""Transitions (windows opening and closing, planned ends) are recorded by a background step,
exactly once across the fleet, and never inside a visitor's request."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from waffle.models import Switch

from maintenance_flags import schedule
from maintenance_flags.models import MaintenanceEvent, MaintenanceWindow, SwitchDetail
from maintenance_flags.names import site_switch_name
from maintenance_flags.schedule import due, record_transitions, recorder
from maintenance_flags.signals import maintenance_started
from maintenance_flags.snapshot import load_snapshot
from tests.utils import turn

WRITES = ("INSERT", "UPDATE", "DELETE")


def wait_for(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.recorder
@pytest.mark.django_db(transaction=True)
def test_a_request_only_reads_and_the_recorder_records_in_the_background() -> None:
    received: list[dict[str, Any]] = []

    def started(**kwargs: Any) -> None:
        received.append({**kwargs, "thread": threading.current_thread().name})

    MaintenanceWindow.objects.create(site_id=1, starts_at=timezone.now() - timedelta(seconds=5), message="db")
    maintenance_started.connect(started)
    try:
        with CaptureQueriesContext(connection) as queries:
            assert Client().get("/").status_code == 503
        writes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]
        assert writes == []  # the request read the state and nothing else
        assert wait_for(lambda: MaintenanceEvent.objects.filter(source="schedule", active=True).exists())
        assert recorder.wait(10)
    finally:
        maintenance_started.disconnect(started)
    assert [r["source"] for r in received] == ["schedule"]
    assert received[0]["thread"] == "maintenance_flags.recorder"
    assert MaintenanceWindow.objects.get().opened_at is not None


@pytest.mark.recorder
@pytest.mark.django_db(transaction=True)
def test_a_planned_end_is_recorded_once_in_the_background() -> None:
    turn(True)
    SwitchDetail.objects.update_or_create(
        switch_name=site_switch_name(1), defaults={"ends_at": timezone.now() - timedelta(seconds=1)}
    )
    assert Client().get("/").status_code == 200  # the end has passed: open, whatever is recorded
    assert wait_for(lambda: MaintenanceEvent.objects.filter(source="schedule", active=False).count() == 1)
    assert recorder.wait(10)
    record_transitions(load_snapshot())  # nothing left to claim
    assert MaintenanceEvent.objects.filter(source="schedule").count() == 1


@pytest.mark.django_db
def test_what_falls_due() -> None:
    now = timezone.now()
    past, future = now - timedelta(minutes=5), now + timedelta(minutes=5)
    MaintenanceWindow.objects.create(starts_at=future)  # not yet
    opening = MaintenanceWindow.objects.create(starts_at=past)
    running = MaintenanceWindow.objects.create(starts_at=past, ends_at=future, opened_at=past)  # recorded
    closing = MaintenanceWindow.objects.create(starts_at=past, ends_at=now - timedelta(minutes=1), opened_at=past)
    turn(True)
    SwitchDetail.objects.update_or_create(switch_name=site_switch_name(1), defaults={"ends_at": past})
    windows, ends = due(load_snapshot(), now)
    assert {w.pk for w in windows} == {opening.pk, closing.pk}
    assert running.pk not in {w.pk for w in windows}
    assert ends == [site_switch_name(1)]


@pytest.mark.recorder
@pytest.mark.django_db
def test_the_recorder_runs_one_recording_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    MaintenanceWindow.objects.create(starts_at=timezone.now() - timedelta(minutes=1))
    snapshot = load_snapshot()
    release = threading.Event()
    monkeypatch.setattr(schedule, "record_transitions", lambda snapshot: release.wait(10))
    assert recorder.submit(snapshot) is True
    assert recorder.submit(snapshot) is False  # one is running: the next refresh tries again
    assert recorder.wait(0.05) is False
    release.set()
    assert recorder.wait(10) is True


@pytest.mark.recorder
@pytest.mark.django_db
def test_nothing_due_starts_no_thread() -> None:
    assert recorder.submit(load_snapshot()) is False


@pytest.mark.django_db
def test_transition_failures_are_logged(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from maintenance_flags.models import MaintenanceWindow

    MaintenanceWindow.objects.create(starts_at=timezone.now() - timedelta(minutes=1))

    def broken(*args: Any) -> None:
        raise DatabaseError("read-only replica")

    monkeypatch.setattr(schedule, "_record_windows", broken)
    schedule.record_transitions(load_snapshot())
    assert "Could not record scheduled maintenance transitions" in caplog.text


@pytest.mark.django_db
def test_planned_end_claimed_elsewhere_is_not_repeated() -> None:
    from django.utils import timezone

    turn(True)
    schedule._end_planned(["maintenance_mode_site_1"], timezone.now())  # no planned end to claim
    assert Switch.objects.get(name="maintenance_mode_site_1").active
