"""The snapshot: what one read (six queries) loads, and what it says without I/O."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import RequestFactory, override_settings

from maintenance_flags.models import IgnoredURL
from maintenance_flags.snapshot import Snapshot, load_snapshot
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
