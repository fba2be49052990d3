"""Fixtures shared by every test module (plain helpers are in ``tests/utils.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.sites.models import Site
from django.test import Client
from django.test.signals import template_rendered
from django.utils import timezone, translation

from maintenance_flags import store as store_module
from maintenance_flags.schedule import recorder
from maintenance_flags.store import store
from tests.utils import turn


@pytest.fixture(autouse=True)
def _fresh_state(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with no memoised state and the Site cache cleared.

    Transitions are recorded by a background thread in production; a test's own transaction is
    invisible to it, so tests call ``schedule.record_transitions`` themselves, and only those
    marked ``recorder`` (with a committed database) run the thread.
    """
    if request.node.get_closest_marker("recorder") is None:
        monkeypatch.setattr(recorder, "submit", lambda snapshot, then=None: False)
    store.reset()
    Site.objects.clear_cache()
    translation.deactivate()  # LocaleMiddleware leaves the last request's language active
    yield
    store.reset()
    translation.deactivate()


@pytest.fixture
def site(db: None) -> Site:
    return Site.objects.get(pk=1)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """Move django.utils.timezone.now (and so the per-request state) forward at will."""
    now = [timezone.now()]
    monkeypatch.setattr(timezone, "now", lambda: now[0])
    return now


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move the store's clock forward (how old its memo is), and nothing else's."""
    now = [time.monotonic()]
    monkeypatch.setattr(store_module, "time", SimpleNamespace(monotonic=lambda: now[0]))

    def forward(seconds: float) -> None:
        now[0] += seconds

    return forward


@pytest.fixture
def maintenance_on(db: None) -> None:
    turn(True)


@pytest.fixture
def staff_client(db: None, django_user_model: type[User]) -> Client:
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def renders() -> Iterator[list[str]]:
    """The names of the templates rendered during the test, in order (a spy on the template engine)."""
    names: list[str] = []

    def rendered(sender: Any, template: Any, **kwargs: Any) -> None:
        names.append(template.name)

    template_rendered.connect(rendered)
    yield names
    template_rendered.disconnect(rendered)
