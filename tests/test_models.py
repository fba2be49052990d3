"""The models: their strings, validation, and what saving a window resets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from maintenance_flags.models import BypassToken, IgnoredURL, MaintenanceWindow, SwitchDetail
from maintenance_flags.snapshot import load_snapshot
from maintenance_flags.state import state_for_site_id
from maintenance_flags.switches import KEEP

pytestmark = pytest.mark.django_db


def test_extending_a_closed_window_opens_it_again() -> None:
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        site_id=1, starts_at=now - timedelta(hours=2), ends_at=now - timedelta(hours=1), closed_at=now
    )
    assert Client().get("/").status_code == 200
    window.ends_at = now + timedelta(hours=1)
    window.save()
    window.refresh_from_db()
    assert window.closed_at is None
    assert Client().get("/").status_code == 503
    assert state_for_site_id(load_snapshot(), 1).reason == "window"


def test_a_closed_window_moved_into_the_future_opens_later() -> None:
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        site_id=1, starts_at=now - timedelta(hours=2), ends_at=now - timedelta(hours=1), opened_at=now, closed_at=now
    )
    window.starts_at = now + timedelta(hours=1)
    window.ends_at = now + timedelta(hours=2)
    window.save()
    window.refresh_from_db()
    assert window.closed_at is None
    assert window.opened_at is None
    assert Client().get("/").status_code == 200
    assert "Scheduled maintenance" in Client().get("/").content.decode()


def test_model_strings() -> None:
    assert str(SwitchDetail(switch_name="maintenance_mode_site_1")) == "maintenance_mode_site_1"
    assert str(BypassToken(label="qa")) == "qa"
    assert str(BypassToken(pk=3)) == "#3"
    assert repr(KEEP) == "KEEP"


def test_ignored_url_validation() -> None:
    with pytest.raises(ValidationError, match="valid regular expression"):
        IgnoredURL(pattern="(unclosed").full_clean()
    IgnoredURL(pattern="^ignored-page/$").full_clean()
    assert str(IgnoredURL(pattern="^x")) == "^x"
