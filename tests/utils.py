"""Plain helpers shared by the test modules (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import time
from io import StringIO
from pathlib import Path
from typing import Any

from django.core.management import call_command
from waffle.models import Switch

import maintenance_flags
from maintenance_flags.names import ALL_SITES_SWITCH, site_switch_name
from maintenance_flags.store import StateStore, store
from maintenance_flags.switches import set_switch

APP_TEMPLATES = str(Path(maintenance_flags.__file__).resolve().parent / "templates")


def django_templates(*loaders: Any) -> list[dict[str, Any]]:
    """A ``TEMPLATES`` setting with only these loaders (and the request context processor)."""
    return [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {"loaders": list(loaders), "context_processors": ["django.template.context_processors.request"]},
        }
    ]


def locmem(templates: dict[str, str]) -> tuple[str, dict[str, str]]:
    return ("django.template.loaders.locmem.Loader", templates)


#: Only the app's own templates: the built-in 503 page, not the demo project's 503.html.
BUILTIN_ONLY = django_templates(("django.template.loaders.filesystem.Loader", [APP_TEMPLATES]))


def run(*args: str) -> str:
    """``manage.py setmaintenance *args``; its stdout."""
    out = StringIO()
    call_command("setmaintenance", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def turn(on: bool, site_id: int | None = 1) -> None:
    """Turn a site's switch (or, with ``site_id=None``, the global one) on or off."""
    set_switch(ALL_SITES_SWITCH if site_id is None else site_switch_name(site_id), on)


def active(name: str) -> bool:
    """The switch's ``active`` (it must exist)."""
    return bool(Switch.objects.get(name=name).active)


def switch_on(name: str) -> bool:
    """The switch exists and is active."""
    switch = Switch.objects.filter(name=name).first()
    return bool(switch and switch.active)


def switch_detail(name: str) -> tuple[str, int | None]:
    """The switch detail's redirect target and refresh."""
    from maintenance_flags.models import SwitchDetail

    row = SwitchDetail.objects.get(switch_name=name)
    return row.redirect_url, row.refresh


def settle(memo: StateStore = store) -> None:
    """Wait until the background refresh that a stale read started has installed its snapshot."""
    deadline = time.monotonic() + 10
    while memo.fresh() is None:
        assert time.monotonic() < deadline, "no background refresh"
        time.sleep(0.01)
