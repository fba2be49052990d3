"""Durations and times: every one returned can be stored; anything else is a ValueError that says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from maintenance_flags.models import MaintenanceWindow
from maintenance_flags.times import end_after, parse_duration, parse_when
from tests.utils import run


def test_durations() -> None:
    assert parse_duration(" 90s ") == timedelta(seconds=90)
    assert parse_duration("2d") == timedelta(days=2)
    with pytest.raises(ValueError, match="'99999999999d' is too long: the end would be after the year 9999"):
        parse_duration("99999999999d")


def test_end_after() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert end_after("30m", now) == datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="'3000000d' is too long"):
        end_after("3000000d", now)
    with pytest.raises(ValueError, match="not a duration"):
        end_after("0m", now)


@pytest.mark.parametrize(
    "value", ["10000-01-01T00:00Z", "+12026-01-01", "9999-12-31T23:59:59-00:01", "0001-01-01T00:00+00:01"]
)
def test_times_outside_the_years_1_to_9999_in_utc(value: str) -> None:
    with pytest.raises(ValueError, match=r"is outside the years 1 to 9999 \(in UTC\)"):
        parse_when(value)


def test_times_at_the_edges() -> None:
    assert parse_when("9999-12-31T23:59:59.999999Z") == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse_when("0001-01-01T00:00Z") == datetime(1, 1, 1, tzinfo=UTC)
    with override_settings(TIME_ZONE="America/New_York"), pytest.raises(ValueError, match="outside"):
        parse_when("9999-12-31T23:00")  # naive: New York time, after the year 9999 in UTC


@override_settings(USE_TZ=False, TIME_ZONE="America/New_York")
def test_times_without_time_zone_support() -> None:
    assert parse_when("9999-12-31T23:00") == datetime(9999, 12, 31, 23, 0)  # stored as it is
    assert parse_when("2026-01-01T17:00Z") == datetime(2026, 1, 1, 12, 0)  # local time
    with pytest.raises(ValueError, match="outside"):
        parse_when("0001-01-01T00:00Z")  # before the year 1 in local time
    assert end_after("1h", datetime(2026, 1, 1)) == datetime(2026, 1, 1, 1, 0)


@pytest.mark.django_db
@override_settings(USE_TZ=False)
def test_times_without_time_zones() -> None:
    run("on", "--until", "2099-12-01T02:00Z")
    run("schedule", "--start", "2099-12-01T01:00", "--end", "2099-12-01T02:00Z")
    window = MaintenanceWindow.objects.get()
    assert timezone.is_naive(window.starts_at)
    assert Client().get("/").status_code == 503
