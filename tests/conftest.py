from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.sites.models import Site
from django.test import Client
from django.utils import translation

from maintenance_flags.state import ALL_SITES_SWITCH, set_switch, site_switch_name, store


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    """Every test starts with no memoised state and the Site cache cleared."""
    store.reset()
    Site.objects.clear_cache()
    translation.deactivate()  # LocaleMiddleware leaves the last request's language active
    yield
    store.reset()
    translation.deactivate()


@pytest.fixture
def site(db: None) -> Site:
    return Site.objects.get(pk=1)


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
