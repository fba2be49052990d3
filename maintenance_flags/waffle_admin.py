"""waffle's Switch admin, made safe for our switches.

waffle's "Enable selected switches" on a select-all would also turn on
``maintenance_mode_all_sites`` and take every site down. This module swaps waffle's
registered ``SwitchAdmin`` for :class:`MaintenanceSwitchAdmin`, which

- adds a list filter "By maintenance switches" (yes / no), and
- keeps maintenance switches out of every bulk action: they are skipped, a warning points
  to the "Site maintenance" page, and the other selected switches are changed as usual.

Editing one maintenance switch on its own change form still works (an explicit, separate
step). Projects with their own Switch admin can add :class:`MaintenanceSwitchAdminMixin`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.urls import NoReverseMatch, reverse
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.inspect import get_func_args
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from maintenance_flags.names import our_switches as ours
from maintenance_flags.names import switch_model

if TYPE_CHECKING:
    MixinBase = admin.ModelAdmin[Any]
else:
    MixinBase = object

SITE_MAINTENANCE_URL_NAME = "maintenance_flags_sitemaintenance_changelist"

Action = Callable[[Any, HttpRequest, "QuerySet[Any]"], HttpResponseBase | None]


class MaintenanceSwitchFilter(admin.SimpleListFilter):
    """The list filter "By maintenance switches": ours (``maintenance_mode_*``, ``maintenance_readonly_*``) or not."""

    title = _("maintenance switches")
    parameter_name = "maintenance"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(ours())
        if self.value() == "no":
            return queryset.exclude(ours())
        return queryset


def site_maintenance_url(admin_site: admin.AdminSite) -> str | None:
    """The "Site maintenance" page on this admin site, if it has one."""
    try:
        return reverse(f"{admin_site.name}:{SITE_MAINTENANCE_URL_NAME}", current_app=admin_site.name)
    except NoReverseMatch:
        return None


def skip_maintenance_switches(action: Action) -> Action:
    """Wrap a bulk action so that it never touches a maintenance switch."""

    @functools.wraps(action)
    def guarded(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponseBase | None:
        skipped = list(queryset.filter(ours()).order_by("name").values_list("name", flat=True))
        if skipped:
            warn_skipped(modeladmin, request, skipped)
        rest = queryset.exclude(ours())
        if skipped and not rest.exists():
            return None  # nothing left to act on (and no confirmation page for nothing)
        return action(modeladmin, request, rest)

    return guarded


def html_format(text: str, **values: Any) -> SafeString:
    """``text % values`` as HTML: the (translated) text and every string value are escaped unless already safe."""
    escaped = {key: value if isinstance(value, int) else conditional_escape(value) for key, value in values.items()}
    return mark_safe(conditional_escape(text) % escaped)


def warn_skipped(modeladmin: Any, request: HttpRequest, names: Sequence[str]) -> None:
    """Tell the user which maintenance switches a bulk action left alone, and where to change them."""
    text = ngettext(
        "Skipped %(count)d maintenance switch: %(names)s. Bulk actions never change maintenance switches, "
        "so that no site goes down by accident.",
        "Skipped %(count)d maintenance switches: %(names)s. Bulk actions never change maintenance switches, "
        "so that no site goes down by accident.",
        len(names),
    )
    listed = format_html_join(", ", "<code>{}</code>", ((name,) for name in names))
    message = html_format(text, count=len(names), names=listed)
    url = site_maintenance_url(modeladmin.admin_site)
    if url is not None:
        link = format_html('<a href="{}">{}</a>', url, gettext("Site maintenance"))
        hint = html_format(gettext("Use the %(link)s page to turn maintenance mode on or off."), link=link)
    else:
        hint = html_format(gettext("Edit them one at a time to turn maintenance mode on or off."))
    modeladmin.message_user(request, format_html("{} {}", message, hint), messages.WARNING)


class MaintenanceSwitchAdminMixin(MixinBase):
    """Add to a Switch ``ModelAdmin``: the maintenance filter, and bulk actions that skip our switches."""

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return [*super().get_list_filter(request), MaintenanceSwitchFilter]

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        """Every bulk action, wrapped by :func:`skip_maintenance_switches`.

        Django 6.1 passes ``action_location`` (and warns about overrides without it); 5.2 never does.
        """
        parent: Callable[..., dict[str, Any]] = super().get_actions
        if action_location is None:
            actions = parent(request)
        elif "action_location" in get_func_args(parent):
            actions = parent(request, action_location=action_location)
        elif action_location.value == "CHANGE_LIST":  # waffle 5.0's get_actions() predates the argument
            actions = parent(request)
        else:
            return {}
        return {name: guard_action(action) for name, action in actions.items()}


def guard_action(action: Any) -> Any:
    """Wrap the callable of one ``get_actions()`` value: a tuple (Django 5.2) or an ``Action`` (6.1)."""
    if isinstance(action, tuple):
        func, name, description = action
        return (skip_maintenance_switches(func), name, description)
    return dataclasses.replace(action, func=skip_maintenance_switches(action.func))


def replace_waffle_switch_admin(site: admin.AdminSite | None = None) -> bool:
    """Swap waffle's own ``SwitchAdmin`` on ``site`` (default: ``admin.site``) for one with the mixin.

    Returns whether it swapped. Leaves the admin alone when waffle is not installed (system
    check E003 says so), its admin pages are off (``WAFFLE_ENABLE_ADMIN_PAGES = False``), or the
    project registered its own Switch admin (add :class:`MaintenanceSwitchAdminMixin` to it).
    """
    site = admin.site if site is None else site
    if not apps.is_installed("waffle"):
        return False
    # Importing waffle.admin registers waffle's pages whatever the order of INSTALLED_APPS.
    from waffle.admin import SwitchAdmin

    model = switch_model()
    if not site.is_registered(model) or type(site.get_model_admin(model)) is not SwitchAdmin:
        return False
    site.unregister(model)
    site.register(
        model, type("MaintenanceSwitchAdmin", (MaintenanceSwitchAdminMixin, SwitchAdmin), {"__module__": __name__})
    )
    return True


replace_waffle_switch_admin()
