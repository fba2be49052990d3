"""``override_maintenance`` and the ``maintenance_mode`` fixture, for projects' own tests."""

from __future__ import annotations

import pytest
from django.test import Client

from maintenance_flags.snapshot import load_snapshot
from maintenance_flags.state import state_for_site_id
from maintenance_flags.testutils import maintenance_mode, override_maintenance  # noqa: F401
from tests.utils import turn

pytestmark = pytest.mark.django_db


@override_maintenance()
def test_override_as_decorator() -> None:
    assert Client().get("/").status_code == 503


def test_override_as_context_manager_restores() -> None:
    with override_maintenance():
        assert Client().get("/").status_code == 503
        with override_maintenance(on=False, site_id=1):
            assert Client().get("/").status_code == 200
        assert Client().get("/").status_code == 503
    assert Client().get("/").status_code == 200


def test_override_off_wins_over_switches() -> None:
    turn(True)
    with override_maintenance(on=False):
        assert Client().get("/").status_code == 200
    assert Client().get("/").status_code == 503


def test_override_other_site_only() -> None:
    with override_maintenance(site_id=2):
        assert Client().get("/").status_code == 200
        assert state_for_site_id(load_snapshot(), 2).active


def test_fixture(maintenance_mode: object) -> None:  # noqa: F811
    assert Client().get("/").status_code == 503
    maintenance_mode(on=False)  # type: ignore[operator]
    assert Client().get("/").status_code == 200
