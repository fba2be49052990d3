from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.sites.models import Site
from django.core.management import call_command
from django.test import Client
from django.utils import timezone, translation

import maintenance_flags
from maintenance_flags.names import ALL_SITES_SWITCH, site_switch_name
from maintenance_flags.schedule import recorder
from maintenance_flags.store import store
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


@pytest.fixture(autouse=True)
def _fresh_state(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with no memoised state and the Site cache cleared.

    Transitions are recorded by a background thread in production; a test's own transaction is
    invisible to it, so tests call ``schedule.record_transitions`` themselves, and only those
    marked ``recorder`` (with a committed database) run the thread.
    """
    if request.node.get_closest_marker("recorder") is None:
        monkeypatch.setattr(recorder, "submit", lambda snapshot: False)
    store.reset()
    Site.objects.clear_cache()
    translation.deactivate()  # LocaleMiddleware leaves the last request's language active
    yield
    store.reset()
    translation.deactivate()


@pytest.fixture
def site(db: None) -> Site:
    return Site.objects.get(pk=1)


def run(*args: str) -> str:
    """``manage.py setmaintenance *args``; its stdout."""
    out = StringIO()
    call_command("setmaintenance", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """Move django.utils.timezone.now (and so the per-request state) forward at will."""
    now = [timezone.now()]
    monkeypatch.setattr(timezone, "now", lambda: now[0])
    return now


def turn(on: bool, site_id: int | None = 1) -> None:
    set_switch(ALL_SITES_SWITCH if site_id is None else site_switch_name(site_id), on)


@pytest.fixture
def maintenance_on(db: None) -> None:
    turn(True)


@pytest.fixture
def staff_client(db: None, django_user_model: type) -> Client:
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    return client
