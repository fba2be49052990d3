"""The snapshot: what one read (six queries) loads, and what it says without I/O."""

from __future__ import annotations

import logging
import pickle
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sites.models import Site
from django.test import RequestFactory, override_settings
from django.utils import timezone

from maintenance_flags import bypass
from maintenance_flags.models import IgnoredURL, MaintenanceWindow
from maintenance_flags.snapshot import Snapshot, load_snapshot
from maintenance_flags.state import state_for_site_id
from tests.utils import turn

pytestmark = pytest.mark.django_db


def test_site_for_without_allowed_host() -> None:
    request = RequestFactory().get("/", headers={"Host": "evil.example"})
    with override_settings(SITE_ID=None, ALLOWED_HOSTS=["example.com"]):
        assert load_snapshot().site_for(request) is None


def test_bad_pattern_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    IgnoredURL.objects.bulk_create([IgnoredURL(pattern="(bad-once")])
    with caplog.at_level(logging.WARNING, logger="maintenance_flags"):
        load_snapshot()
        load_snapshot()
    assert len([r for r in caplog.records if "(bad-once" in r.getMessage()]) == 1


def test_quiet_snapshot() -> None:
    assert load_snapshot().quiet
    turn(True, site_id=None)
    assert not load_snapshot().quiet
    assert Snapshot(switches={"maintenance_mode_site_1": False}).quiet  # a switch that is off


def test_a_state_read_is_six_queries(django_assert_num_queries: Any) -> None:
    """README and docs/deployment.md: each refresh is six small queries."""
    with django_assert_num_queries(6):
        load_snapshot()


def test_a_pickled_snapshot_carries_what_was_read_and_nothing_derived() -> None:
    """The fleet tier shares snapshots pickled: the same state comes back, Sites as if just read
    (with no Django version attached), and without the caches derived from it."""
    Site.objects.create(domain="Shop.Example", name="shop")
    IgnoredURL.objects.create(pattern="^health/")
    MaintenanceWindow.objects.create(site_id=1, starts_at=timezone.now() + timedelta(hours=1), message="later")
    turn(True)
    bypass.issue(minutes=5, site_id=1)
    snapshot = load_snapshot()
    state_for_site_id(snapshot, 1)  # fills the derived cache
    copy = pickle.loads(pickle.dumps(snapshot))
    assert copy == snapshot
    assert copy.derived.states == {}
    assert copy.sites_by_domain["shop.example"] is copy.sites_by_id[copy.sites_by_domain["shop.example"].pk]
    site = copy.sites_by_id[1]
    assert (site.pk, site.domain, site._state.adding, site._state.db) == (1, "example.com", False, "default")
    assert state_for_site_id(copy, 1) == state_for_site_id(snapshot, 1)
    assert b"_django_version" not in pickle.dumps(snapshot)


def test_each_read_from_the_database_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="maintenance_flags"):
        load_snapshot()
    assert "Reading the maintenance state from the database" in caplog.text
