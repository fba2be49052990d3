"""Writing switches: what changed is reported and recorded; failures after the commit are logged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, transaction
from django.test import Client
from django.utils import timezone
from waffle.models import Switch

from maintenance_flags.models import SwitchDetail
from maintenance_flags.store import store
from maintenance_flags.switches import set_switch
from tests.utils import run

pytestmark = pytest.mark.django_db


def test_on_after_a_planned_end_passed_turns_it_on_again() -> None:
    run("on", "--for", "1h")
    SwitchDetail.objects.update(ends_at=timezone.now() - timedelta(seconds=1))  # the end passed, unnoticed
    out = run("on")
    assert "already on" not in out
    assert "1 example.com on (site switch)" in out
    assert Client().get("/").status_code == 503


def test_off_after_a_planned_end_passed_turns_it_off() -> None:
    from maintenance_flags.models import MaintenanceEvent

    run("on", "--for", "1h")
    SwitchDetail.objects.update(ends_at=timezone.now() - timedelta(seconds=1))  # the end passed, unnoticed
    run("off")
    assert not Switch.objects.get(name="maintenance_mode_site_1").active  # the row, not only the detail
    assert not SwitchDetail.objects.exists()
    store.invalidate()
    assert Client().get("/").status_code == 200
    ended = MaintenanceEvent.objects.filter(switch_name="maintenance_mode_site_1", active=False).get()
    assert ended.source == "schedule"  # the end that passed, recorded once


def test_on_after_a_planned_end_passed_records_both_changes() -> None:
    from maintenance_flags.models import MaintenanceEvent

    run("on", "--for", "1h")
    SwitchDetail.objects.update(ends_at=timezone.now() - timedelta(seconds=1))
    run("on")
    events = MaintenanceEvent.objects.filter(switch_name="maintenance_mode_site_1").order_by("pk")
    assert [(e.source, e.active) for e in events] == [("command", True), ("schedule", False), ("command", True)]


def _atomic_failing_on_exit(error: Exception) -> Any:
    """set_switch's own (outermost, argument-less) atomic block fails as it exits."""
    from contextlib import contextmanager

    from django.db import transaction

    real = transaction.atomic

    @contextmanager
    def failing() -> Any:
        with real():
            yield
        raise error

    def atomic(*args: Any, **kwargs: Any) -> Any:
        return real(*args, **kwargs) if args or kwargs else failing()

    return atomic


def test_post_commit_failure_is_logged(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from maintenance_flags import switches

    monkeypatch.setattr(transaction, "atomic", _atomic_failing_on_exit(ConnectionError("redis down")))
    switch, changed = switches.set_switch("maintenance_mode_site_1", True)
    assert changed
    assert switch.active
    assert "post-commit step failed" in caplog.text


@pytest.mark.parametrize("error", [DatabaseError("commit failed"), RuntimeError("before commit")])
def test_failures_before_or_at_commit_are_raised(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    from maintenance_flags import switches

    if isinstance(error, DatabaseError):
        monkeypatch.setattr(transaction, "atomic", _atomic_failing_on_exit(error))
    else:

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise error

        monkeypatch.setattr(switches, "switch_model", broken)
    with pytest.raises(type(error)):
        switches.set_switch("maintenance_mode_site_1", True)


def test_set_switch_reports_changes() -> None:
    _, changed = set_switch("maintenance_mode_site_1", True)
    assert changed
    _, changed = set_switch("maintenance_mode_site_1", True)
    assert not changed
