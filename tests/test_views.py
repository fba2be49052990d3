"""Exemptions by URL name, decorators, default health-check paths."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.test import AsyncClient, Client, override_settings

from maintenance_flags.decisions import url_name_ignored
from maintenance_flags.testutils import maintenance_mode, override_maintenance  # noqa: F401
from tests.utils import turn

pytestmark = pytest.mark.django_db


def aget(path: str, **kwargs: Any) -> int:
    return int(async_to_sync(AsyncClient().get)(path, **kwargs).status_code)


def test_exempt_views_are_served() -> None:
    turn(True)
    assert Client().get("/exempt/").status_code == 200
    assert aget("/async-exempt/") == 200
    assert Client().get("/").status_code == 503


def test_exempt_views_in_readonly_mode() -> None:
    from io import StringIO

    from django.core.management import call_command

    call_command("setmaintenance", "readonly", "on", stdout=StringIO(), stderr=StringIO())
    assert Client().post("/exempt/").status_code == 200
    assert Client().post("/submit/").status_code == 503


@pytest.mark.parametrize("path", ["/forced/", "/async-forced/"])
def test_forced_views(path: str, staff_client: Client) -> None:
    response = Client().get(path)
    assert response.status_code == 503
    assert response["X-Maintenance-Mode"] == "on"
    assert response["Retry-After"] == "3600"
    assert response["Cache-Control"] == "no-store"
    assert aget(path) == 503
    assert staff_client.get(path).status_code == 200
    with override_settings(INTERNAL_IPS=["127.0.0.1"]):
        assert Client().get(path).status_code == 200


def test_forced_async_view_lets_staff_through(django_user_model: type[User]) -> None:
    client = AsyncClient()
    client.force_login(django_user_model.objects.create_user("s", is_staff=True))
    assert async_to_sync(client.get)("/async-forced/").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/livez/", "/health"])
def test_health_paths_exempt_by_default(path: str) -> None:
    turn(True)
    assert Client().get(path).status_code in (200, 404)  # never the maintenance page


def test_other_paths_are_not_health_checks() -> None:
    turn(True)
    for path in ("/ping", "/ready", "/healthcheck-page", "/status"):
        assert Client().get(path).status_code == 503


@override_settings(MAINTENANCE_HEALTH_CHECK_URLS=[])
def test_health_paths_can_be_disabled() -> None:
    turn(True)
    assert Client().get("/healthz").status_code == 503


@pytest.mark.parametrize(
    ("names", "path", "status"),
    [
        (["api:status"], "/api/status/", 200),
        (["api:status"], "/api/other/", 503),
        (["api:*"], "/api/other/", 200),
        (["status"], "/api/status/", 503),  # a plain name matches URLs without namespace only
        (["healthz"], "/healthz", 200),
        (["index"], "/", 200),
        (["index"], "/nowhere/", 503),
    ],
)
def test_ignored_url_names(names: list[str], path: str, status: int) -> None:
    turn(True)
    with override_settings(MAINTENANCE_IGNORED_URL_NAMES=names, MAINTENANCE_HEALTH_CHECK_URLS=[]):
        assert Client().get(path).status_code == status


def test_url_name_matching() -> None:
    assert url_name_ignored("status", ["api"], ["api:status"])
    assert url_name_ignored("x", ["a", "b"], ["a:b:*"])
    assert not url_name_ignored("status", ["api"], ["status"])
    assert not url_name_ignored(None, [], ["x"])
    assert not url_name_ignored("x", [], [])
    assert not url_name_ignored("x", [], ["*"])
