"""Set up the benchmark database and put each kind of site into a given state.

Runs inside the worker and toggler processes (any of the venvs), after ``django.setup()``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command

KIND: str = settings.KIND  # type: ignore[misc]
STAFF_USERNAME = "bench-staff"
IGNORED_ROWS = 50


def prepare_database() -> None:
    """Migrate, then make sure the rows every variant expects exist (state: off)."""
    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    if not user_model.objects.filter(username=STAFF_USERNAME).exists():
        user_model.objects.create_user(STAFF_USERNAME, password="bench", is_staff=True)
    if KIND == "waffle":
        from waffle.models import Switch

        Switch.objects.get_or_create(name="maintenance_mode", defaults={"active": False})
    elif KIND == "mm2":
        from django.contrib.sites.models import Site
        from maintenancemode.models import Maintenance

        Maintenance.objects.get_or_create(site=Site.objects.get(pk=settings.SITE_ID))
    apply_state({"on": False})


def staff_cookie() -> str:
    """A session cookie for a logged-in staff user."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=STAFF_USERNAME))
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


_current: dict[str, Any] = {}


def apply_state(state: dict[str, Any]) -> None:
    """Turn maintenance on/off the way each app expects (only what changed)."""
    on = bool(state.get("on", False))
    if _current.get("on") != on:
        if KIND == "mf":
            from maintenance_flags.state import set_switch, site_switch_name

            set_switch(site_switch_name(settings.SITE_ID), on)
        elif KIND == "waffle":
            from waffle.models import Switch

            switch = Switch.objects.get(name="maintenance_mode")
            switch.active = on
            switch.save()  # save(): waffle flushes its cache
        elif KIND == "mm":
            from maintenance_mode.core import set_maintenance_mode

            set_maintenance_mode(on)
        elif KIND == "mm2":
            from maintenancemode.models import Maintenance

            row = Maintenance.objects.get(site_id=settings.SITE_ID)
            row.is_being_performed = on
            row.save()
        _current["on"] = on
    if KIND != "mf":
        return
    ignored = int(state.get("ignored", 0))
    if _current.get("ignored", 0) != ignored:
        from django.contrib.sites.models import Site

        from maintenance_flags.models import IgnoredURL

        IgnoredURL.objects.all().delete()
        site = Site.objects.get(pk=settings.SITE_ID)
        for i in range(ignored):  # none matches the benchmark's paths; half are site-scoped
            IgnoredURL.objects.create(
                pattern=f"^section-{i}/(detail|list)/[0-9]+/$", site=site if i % 2 else None, description=f"row {i}"
            )
        _current["ignored"] = ignored
    from maintenance_flags.state import store

    store.invalidate()
