"""A site's state from a snapshot: on time as the clock runs, with no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client, override_settings
from pytest_django import DjangoAssertNumQueries

from maintenance_flags.snapshot import UNKNOWN
from maintenance_flags.state import state_for_site_id
from maintenance_flags.store import store
from maintenance_flags.switches import set_switch

pytestmark = pytest.mark.django_db


def test_state_memo_lasts_until_the_next_change(
    clock: list[datetime], django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    """Memoised per snapshot, the state still changes on time: here a window opening while the
    switch keeps the site down moves the expected end, and so Retry-After."""
    from maintenance_flags.models import MaintenanceWindow

    now = clock[0]
    set_switch("maintenance_mode_site_1", True, ends_at=now + timedelta(minutes=10))
    MaintenanceWindow.objects.create(
        site_id=1, starts_at=now + timedelta(minutes=5), ends_at=now + timedelta(minutes=60), message="Upgrade"
    )
    client = Client()
    assert client.get("/")["Retry-After"] == "600"
    clock[0] += timedelta(minutes=5)
    with django_assert_num_queries(0):  # no refresh in between: the same snapshot, a new state
        response = client.get("/")
    assert response["Retry-After"] == "3300"
    clock[0] += timedelta(minutes=56)
    assert client.get("/").status_code == 200


def test_state_without_a_site_is_memoised_until_the_global_end(
    clock: list[datetime], django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    from maintenance_flags.state import state_for_site_id

    set_switch("maintenance_mode_all_sites", True, ends_at=clock[0] + timedelta(minutes=1))
    snapshot = store.get()
    with django_assert_num_queries(0):
        assert state_for_site_id(snapshot, None).active
        assert state_for_site_id(snapshot, None) == state_for_site_id(snapshot, None)
    clock[0] += timedelta(minutes=1)
    assert not state_for_site_id(snapshot, None).active


def test_unknown_snapshot_uses_fail_mode(settings: object) -> None:
    assert state_for_site_id(UNKNOWN, 1).active  # closed by default

    with override_settings(MAINTENANCE_FAIL_MODE="open"):
        assert not state_for_site_id(UNKNOWN, 1).active
