"""waffle's Switch admin: the maintenance filter, and bulk actions that never touch our switches."""

from __future__ import annotations

import dataclasses
from io import StringIO
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.sites import AdminSite
from django.contrib.auth.models import User
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client, RequestFactory
from waffle.admin import SwitchAdmin
from waffle.models import AbstractBaseSwitch, Switch

from maintenance_flags import waffle_admin
from maintenance_flags.names import ALL_SITES_SWITCH, site_switch_name
from maintenance_flags.waffle_admin import (
    MaintenanceSwitchAdminMixin,
    MaintenanceSwitchFilter,
    guard_action,
    replace_waffle_switch_admin,
    site_maintenance_url,
    skip_maintenance_switches,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/waffle/switch/"
SITE_MAINTENANCE = "/admin/maintenance_flags/sitemaintenance/"
OURS = [ALL_SITES_SWITCH, site_switch_name(1)]


@pytest.fixture
def others() -> list[AbstractBaseSwitch]:
    return [Switch.objects.create(name="feature_a"), Switch.objects.create(name="feature_b", active=True)]


def maintenance_names() -> set[str]:
    return {name for name in Switch.objects.values_list("name", flat=True) if name.startswith("maintenance_")}


def states() -> dict[str, bool]:
    return dict(Switch.objects.values_list("name", "active"))


def act(client: Client, action: str, names: list[str], select_across: bool = False) -> Any:
    pks = [str(pk) for pk in Switch.objects.filter(name__in=names).values_list("pk", flat=True)]
    data = {"action": action, "_selected_action": pks, "index": "0", "select_across": "1" if select_across else "0"}
    return client.post(CHANGELIST, data, follow=True)


def warnings_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"] if m.level == messages.WARNING]


# --- registration ------------------------------------------------------------------------------------


def test_waffle_switch_admin_is_replaced_on_admin_site() -> None:
    model_admin = admin.site.get_model_admin(Switch)
    assert isinstance(model_admin, MaintenanceSwitchAdminMixin)
    assert isinstance(model_admin, SwitchAdmin)  # waffle's list, search and form stay as they were
    assert type(model_admin).__module__ == "maintenance_flags.waffle_admin"


def test_replace_only_swaps_waffles_own_admin() -> None:
    site = AdminSite(name="other")
    assert replace_waffle_switch_admin(site) is False  # waffle's pages not registered (ENABLE_ADMIN_PAGES off)
    site.register(Switch, SwitchAdmin)
    assert replace_waffle_switch_admin(site) is True
    swapped = site.get_model_admin(Switch)
    assert isinstance(swapped, MaintenanceSwitchAdminMixin)
    assert replace_waffle_switch_admin(site) is False  # already ours
    assert site.get_model_admin(Switch) is swapped

    class ProjectSwitchAdmin(SwitchAdmin):
        pass

    custom = AdminSite(name="custom")
    custom.register(Switch, ProjectSwitchAdmin)
    assert replace_waffle_switch_admin(custom) is False  # the project's own admin is left alone
    assert type(custom.get_model_admin(Switch)) is ProjectSwitchAdmin


def test_replace_does_nothing_without_waffle(monkeypatch: pytest.MonkeyPatch) -> None:
    site = AdminSite(name="nowaffle")
    site.register(Switch, SwitchAdmin)
    monkeypatch.setattr(apps, "is_installed", lambda name: False)
    assert replace_waffle_switch_admin(site) is False
    assert type(site.get_model_admin(Switch)) is SwitchAdmin


# --- the list filter ------------------------------------------------------------------------------------


def names_listed(response: Any) -> set[str]:
    return {switch.name for switch in response.context["cl"].result_list}


def test_filter_by_maintenance_switches(admin_client: Client, others: list[AbstractBaseSwitch]) -> None:
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert "By maintenance switches" in response.text
    assert names_listed(response) == {*maintenance_names(), "feature_a", "feature_b"}
    assert names_listed(admin_client.get(CHANGELIST, {"maintenance": "yes"})) == maintenance_names()
    assert names_listed(admin_client.get(CHANGELIST, {"maintenance": "no"})) == {"feature_a", "feature_b"}


def test_waffles_own_filter_and_search_still_work(admin_client: Client, others: list[AbstractBaseSwitch]) -> None:
    assert names_listed(admin_client.get(CHANGELIST, {"active__exact": "1"})) == {"feature_b"}
    assert names_listed(admin_client.get(CHANGELIST, {"q": "all_sites"})) == {ALL_SITES_SWITCH}
    both = admin_client.get(CHANGELIST, {"maintenance": "yes", "active__exact": "0"})
    assert names_listed(both) == maintenance_names()


def test_filter_lookups() -> None:
    request = RequestFactory().get("/")
    model_admin = admin.site.get_model_admin(Switch)
    list_filter = MaintenanceSwitchFilter(request, {}, Switch, model_admin)
    assert [value for value, _label in list_filter.lookups(request, model_admin)] == ["yes", "no"]


# --- bulk actions -----------------------------------------------------------------------------------------


def test_enable_all_keeps_maintenance_switches_off(admin_client: Client, others: list[AbstractBaseSwitch]) -> None:
    ours = maintenance_names()
    assert set(OURS) <= ours
    response = act(admin_client, "enable_switches", list(states()), select_across=True)
    assert response.status_code == 200
    assert states() == {**dict.fromkeys(ours, False), "feature_a": True, "feature_b": True}
    [warning] = warnings_of(response)
    assert f"Skipped {len(ours)} maintenance switches" in warning
    assert f"<code>{ALL_SITES_SWITCH}</code>" in warning
    assert f"<code>{site_switch_name(1)}</code>" in warning
    # The warning is rendered as HTML, with a working link to our page.
    link = f'<a href="{SITE_MAINTENANCE}">Site maintenance</a>'
    assert link in response.text
    assert admin_client.get(SITE_MAINTENANCE).status_code == 200
    # The site is still up for visitors.
    assert Client().get("/").status_code == 200
    # waffle logs its own changes; nothing is logged for the skipped switches.
    logged = set(LogEntry.objects.values_list("object_repr", flat=True))
    assert logged == {"feature_a on", "feature_b on"}


def test_read_only_switches_are_protected_too(admin_client: Client, others: list[AbstractBaseSwitch]) -> None:
    Switch.objects.get_or_create(name="maintenance_readonly_all_sites")
    act(admin_client, "enable_switches", ["maintenance_readonly_all_sites", "feature_a"])
    assert states()["maintenance_readonly_all_sites"] is False
    assert states()["feature_a"] is True
    listed = names_listed(admin_client.get(CHANGELIST, {"maintenance": "yes"}))
    assert "maintenance_readonly_all_sites" in listed


def test_disable_all_keeps_maintenance_switches_on(admin_client: Client, others: list[AbstractBaseSwitch]) -> None:
    for name in OURS:
        switch = Switch.objects.get(name=name)
        switch.active = True
        switch.save()
    response = act(admin_client, "disable_switches", [*OURS, "feature_b"])
    assert {name: states()[name] for name in [*OURS, "feature_a", "feature_b"]} == {
        ALL_SITES_SWITCH: True,
        site_switch_name(1): True,
        "feature_a": False,
        "feature_b": False,
    }
    assert len(warnings_of(response)) == 1


def test_delete_keeps_maintenance_switches(admin_client: Client, others: list[AbstractBaseSwitch]) -> None:
    response = act(admin_client, "delete_individually", [*OURS, "feature_a"])
    assert set(states()) == {*maintenance_names(), "feature_b"}
    assert set(OURS) <= maintenance_names()
    assert "Skipped 2 maintenance switches" in warnings_of(response)[0]


def test_only_maintenance_switches_selected_changes_nothing(
    admin_client: Client, others: list[AbstractBaseSwitch]
) -> None:
    before = states()
    response = act(admin_client, "enable_switches", [site_switch_name(1)])
    assert states() == before
    [warning] = warnings_of(response)
    assert f"Skipped 1 maintenance switch: <code>{site_switch_name(1)}</code>." in warning
    assert not LogEntry.objects.exists()


def test_other_switches_act_as_in_waffle(admin_client: Client, others: list[AbstractBaseSwitch]) -> None:
    response = act(admin_client, "enable_switches", ["feature_a"])
    assert states()["feature_a"] is True
    assert warnings_of(response) == []


def test_action_choices_keep_waffles_names_and_labels(admin_client: Client) -> None:
    request = RequestFactory().get(CHANGELIST)
    request.user = admin_client.get(CHANGELIST).wsgi_request.user
    choices = dict(admin.site.get_model_admin(Switch).get_action_choices(request))
    assert choices["enable_switches"] == "Enable selected switches"
    assert choices["disable_switches"] == "Disable selected switches"
    assert choices["delete_individually"] == "Delete selected"
    assert "delete_selected" not in choices  # waffle removes Django's bulk delete; still removed


def test_change_form_still_turns_a_maintenance_switch_on(admin_client: Client) -> None:
    """Editing one switch on its own page is an explicit, separate step: it still works."""
    switch = Switch.objects.get(name=site_switch_name(1))
    url = f"{CHANGELIST}{switch.pk}/change/"
    assert admin_client.get(url).status_code == 200
    stamp = {"_0": switch.created.strftime("%Y-%m-%d"), "_1": switch.created.strftime("%H:%M:%S")}
    data = {"name": switch.name, "active": "on", "note": switch.note}
    data |= {f"{field}{part}": value for field in ("created", "modified") for part, value in stamp.items()}
    response = admin_client.post(url, data)
    assert response.status_code == 302
    assert Switch.objects.get(pk=switch.pk).active is True
    assert Client().get("/").status_code == 503


def test_warning_without_a_site_maintenance_page() -> None:
    site = AdminSite(name="bare")
    assert site_maintenance_url(site) is None
    model_admin = SimpleNamespace(admin_site=site, message_user=lambda *a: sent.append(a))
    sent: list[tuple[Any, ...]] = []
    waffle_admin.warn_skipped(model_admin, HttpRequest(), ["maintenance_mode_all_sites"])
    [(_request, message, level)] = sent
    assert level == messages.WARNING
    assert "Edit them one at a time" in message
    assert "<a " not in message


def test_warning_escapes_names() -> None:
    sent: list[tuple[Any, ...]] = []
    model_admin = SimpleNamespace(admin_site=admin.site, message_user=lambda *a: sent.append(a))
    waffle_admin.warn_skipped(model_admin, HttpRequest(), ["maintenance_mode_<b>"])
    assert "<code>maintenance_mode_&lt;b&gt;</code>" in sent[0][1]


# --- Django 6.1's action API (action_location, Action objects), exercised on any version -----------------


@dataclasses.dataclass
class FakeAction:  # the shape of django.contrib.admin.options.Action (Django 6.1)
    func: Any
    name: str
    description: str


def record(modeladmin: Any, request: HttpRequest, queryset: Any) -> None:
    record.seen = sorted(queryset.values_list("name", flat=True))  # type: ignore[attr-defined]


def test_get_actions_with_an_action_location(
    rf: RequestFactory, admin_user: Any, others: list[AbstractBaseSwitch]
) -> None:
    request = rf.get("/")
    request.user = admin_user
    model_admin: Any = admin.site.get_model_admin(Switch)  # Django 6.1's get_actions(request, action_location)
    # waffle 5.0's get_actions(request) takes no location: the change list gets the actions, a form none.
    listed = model_admin.get_actions(request, action_location=SimpleNamespace(value="CHANGE_LIST"))
    assert set(listed) == {"enable_switches", "disable_switches", "delete_individually"}
    assert model_admin.get_actions(request, action_location=SimpleNamespace(value="CHANGE_FORM")) == {}

    class Parent(admin.ModelAdmin):  # type: ignore[type-arg]
        def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
            return {"record": FakeAction(record, "record", f"at {action_location}")}

    class Guarded(MaintenanceSwitchAdminMixin, Parent):
        pass

    actions = Guarded(Switch, AdminSite(name="x")).get_actions(request, action_location="here")
    assert actions["record"].description == "at here"
    actions["record"].func(
        SimpleNamespace(admin_site=admin.site, message_user=lambda *a: None), request, Switch.objects.all()
    )
    assert record.seen == ["feature_a", "feature_b"]  # type: ignore[attr-defined]  # guarded: ours skipped


def test_guard_action_wraps_action_objects(others: list[AbstractBaseSwitch]) -> None:
    guarded = guard_action(FakeAction(record, "record", "Record"))
    assert guarded.name == "record"
    assert guarded.func.__name__ == "record"
    sent: list[tuple[Any, ...]] = []
    model_admin = SimpleNamespace(admin_site=admin.site, message_user=lambda *a: sent.append(a))
    guarded.func(model_admin, HttpRequest(), Switch.objects.all())
    assert record.seen == ["feature_a", "feature_b"]  # type: ignore[attr-defined]
    assert len(sent) == 1


def test_guarded_action_keeps_waffles_attributes() -> None:
    from waffle.admin import enable_switches

    guarded = skip_maintenance_switches(enable_switches)
    assert guarded.allowed_permissions == ("change",)  # type: ignore[attr-defined]
    assert guarded.short_description == enable_switches.short_description  # type: ignore[attr-defined]


@pytest.mark.parametrize(("codename", "offered"), [("view_switch", False), ("change_switch", True)])
def test_bulk_actions_need_the_change_permission(django_user_model: type[User], codename: str, offered: bool) -> None:
    """The guarded actions keep waffle's permission: offered to those who may change switches only."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="waffle", codename=codename))
    client = Client()
    client.force_login(user)
    page = client.get("/admin/waffle/switch/")
    assert page.status_code == 200
    assert ('value="enable_switches"' in page.content.decode()) is offered
    assert ('value="disable_switches"' in page.content.decode()) is offered


# --- our switches in waffle's own tools --------------------------------------------------------------------


def test_waffle_switch_command_lists_our_switches() -> None:
    out = StringIO()
    call_command("waffle_switch", "-l", stdout=out)
    for name in OURS:
        assert name in out.getvalue()
