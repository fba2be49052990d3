"""Every change of state is recorded, from any entry point, and signalled once."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.contrib.sites.models import Site
from django.core.management import call_command
from django.test import AsyncClient, Client, RequestFactory
from waffle.models import Switch

from maintenance_flags.models import MaintenanceEvent
from maintenance_flags.signals import maintenance_ended, maintenance_started

pytestmark = pytest.mark.django_db


@pytest.fixture
def signals() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    received: list[tuple[str, dict[str, Any]]] = []

    def started(sender: Any, **kwargs: Any) -> None:
        received.append(("started", kwargs))

    def ended(sender: Any, **kwargs: Any) -> None:
        received.append(("ended", kwargs))

    maintenance_started.connect(started)
    maintenance_ended.connect(ended)
    yield received
    maintenance_started.disconnect(started)
    maintenance_ended.disconnect(ended)


def events() -> list[tuple[Any, ...]]:
    return list(
        MaintenanceEvent.objects.order_by("pk").values_list("site_id", "active", "previous", "readonly", "source")
    )


def test_command(signals: list[tuple[str, dict[str, Any]]]) -> None:
    call_command("setmaintenance", "on", "--reason", "deploy", stdout=StringIO(), stderr=StringIO())
    call_command("setmaintenance", "on", stdout=StringIO(), stderr=StringIO())  # no change: no event
    call_command("setmaintenance", "off", stdout=StringIO(), stderr=StringIO())
    assert events() == [(1, True, False, False, "command"), (1, False, True, False, "command")]
    assert [name for name, _ in signals] == ["started", "ended"]
    kwargs = signals[0][1]
    assert kwargs["site"] == Site.objects.get(pk=1)
    assert kwargs["source"] == "command"
    assert kwargs["user"] is None
    assert kwargs["reason"] == "deploy"
    assert set(kwargs) == {"signal", "site", "source", "user", "reason"}


def test_global_switch_has_no_site(signals: list[tuple[str, dict[str, Any]]]) -> None:
    call_command("setmaintenance", "on", "--all", stdout=StringIO(), stderr=StringIO())
    assert events() == [(None, True, False, False, "command")]
    assert signals[0][1]["site"] is None


def test_readonly_is_recorded_but_not_signalled(signals: list[tuple[str, dict[str, Any]]]) -> None:
    """The signals are about maintenance: a receiver posting "site down" must not fire for read-only."""
    call_command("setmaintenance", "readonly", "on", stdout=StringIO(), stderr=StringIO())
    assert events() == [(1, True, None, True, "command")]
    assert signals == []


def test_shell_save_and_waffle_switch(signals: list[tuple[str, dict[str, Any]]]) -> None:
    switch = Switch.objects.get(name="maintenance_mode_site_1")
    switch.active = True
    switch.save()
    call_command("waffle_switch", "maintenance_mode_site_1", "off", stdout=StringIO())
    assert events() == [(1, True, False, False, "switch"), (1, False, True, False, "switch")]
    assert [name for name, _ in signals] == ["started", "ended"]


def test_other_switches_are_not_recorded(signals: list[tuple[str, dict[str, Any]]]) -> None:
    Switch.objects.create(name="some_feature", active=True)
    assert events() == []
    assert signals == []


def test_our_admin_records_the_user(django_user_model: type[User], signals: list[tuple[str, dict[str, Any]]]) -> None:
    user = django_user_model.objects.create_superuser("boss", password="pw")
    client = Client()
    client.force_login(user)
    client.post("/admin/maintenance_flags/sitemaintenance/", {"site-1": "on", "reason": "hotfix"})
    event = MaintenanceEvent.objects.get()
    assert (event.source, event.user, event.reason, event.active) == ("admin", user, "hotfix", True)
    assert signals[0][1]["user"] == user
    html = client.get("/admin/maintenance_flags/maintenanceevent/?site__id__exact=1").content.decode()
    assert "hotfix" in html


def test_waffle_admin_records_the_user(django_user_model: type[User]) -> None:
    user = django_user_model.objects.create_superuser("boss", password="pw")
    client = Client()
    client.force_login(user)
    switch = Switch.objects.get(name="maintenance_mode_site_1")
    dates = {"created_0": "2026-01-01", "created_1": "00:00:00", "modified_0": "2026-01-01", "modified_1": "00:00:00"}
    client.post(f"/admin/waffle/switch/{switch.pk}/change/", {"name": switch.name, "active": "on", **dates})
    event = MaintenanceEvent.objects.get()
    assert (event.source, event.user) == ("switch", user)


def test_deleting_an_active_switch_ends_maintenance(signals: list[tuple[str, dict[str, Any]]]) -> None:
    call_command("setmaintenance", "on", stdout=StringIO(), stderr=StringIO())
    Switch.objects.get(name="maintenance_mode_site_1").delete()
    assert events()[-1] == (1, False, True, False, "switch")
    assert [name for name, _ in signals] == ["started", "ended"]


def test_deleting_a_site_in_maintenance() -> None:
    site = Site.objects.create(domain="gone.example", name="Gone")
    call_command("setmaintenance", "on", str(site.pk), stdout=StringIO(), stderr=StringIO())
    site_id = site.pk
    site.delete()
    last = MaintenanceEvent.objects.order_by("pk").last()
    assert last is not None
    assert last.active is False
    assert last.site is None
    assert last.switch_name == f"maintenance_mode_site_{site_id}"


def test_events_are_read_only_in_admin(django_user_model: type[User]) -> None:
    call_command("setmaintenance", "on", stdout=StringIO(), stderr=StringIO())
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    event = MaintenanceEvent.objects.get()
    assert client.get("/admin/maintenance_flags/maintenanceevent/add/").status_code == 403
    assert client.post(f"/admin/maintenance_flags/maintenanceevent/{event.pk}/delete/").status_code == 403
    assert str(event) == "maintenance_mode_site_1 on (command)"


@pytest.mark.parametrize(("method", "named"), [("get", False), ("post", True)])
def test_user_behind_a_change_is_named_for_unsafe_methods(
    django_user_model: type[User], method: str, named: bool
) -> None:
    """The middleware keeps the request for the audit only for unsafe methods (README)."""
    from django.http import HttpResponse

    from maintenance_flags.middleware import MaintenanceModeMiddleware
    from maintenance_flags.switches import set_switch

    user = django_user_model.objects.create_user("ops", password="pw", is_staff=True)

    def view(request: Any) -> HttpResponse:
        set_switch("maintenance_mode_site_1", True)
        return HttpResponse("ok")

    request = getattr(RequestFactory(), method)("/")
    request.user = user
    MaintenanceModeMiddleware(view)(request)
    event = MaintenanceEvent.objects.get(switch_name="maintenance_mode_site_1")
    assert event.user == (user if named else None)


def test_async_unsafe_request_is_served_and_forgotten() -> None:
    from maintenance_flags.audit import current_request

    response = async_to_sync(AsyncClient().post)("/async/")
    assert response.status_code == 200
    assert current_request.get() is None
