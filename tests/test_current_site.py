"""The request's site is found exactly as ``Site.objects.get_current(request)`` finds it."""

from __future__ import annotations

import pytest
from django.contrib.sites.models import Site
from django.core.exceptions import ObjectDoesNotExist
from django.test import Client, RequestFactory, override_settings

from maintenance_flags.snapshot import load_snapshot
from tests.utils import turn

pytestmark = pytest.mark.django_db

HOSTS = [
    "shop.example",
    "shop.example.",
    "SHOP.EXAMPLE.",
    "Shop.Example",
    "shop.example:8000",
    "shop.example.:8000",
    "SHOP.example.:443",
    "other.example",
    "other.example.",
    "unknown.example",
    "unknown.example.",
    "[::1]",
    "[::1]:8000",
]


@pytest.fixture
def shop() -> Site:
    Site.objects.create(domain="other.example", name="Other")
    return Site.objects.create(domain="shop.example", name="Shop")


@override_settings(SITE_ID=None, ALLOWED_HOSTS=["*"])
@pytest.mark.parametrize("host", HOSTS)
def test_same_site_as_get_current(shop: Site, host: str) -> None:
    request = RequestFactory().get("/", headers={"Host": host})
    Site.objects.clear_cache()
    try:
        expected: Site | None = Site.objects.get_current(request)
    except ObjectDoesNotExist:
        expected = None
    assert load_snapshot().site_for(request) == expected


@override_settings(SITE_ID=None, ALLOWED_HOSTS=["*"])
@pytest.mark.parametrize("host", ["shop.example.", "SHOP.EXAMPLE.", "shop.example.:8000"])
def test_trailing_dot_does_not_escape_maintenance(shop: Site, host: str) -> None:
    """A security fix: 1.0 matched no Site for these hosts, so only the global switch applied."""
    turn(True, site_id=shop.pk)
    assert Client().get("/", headers={"Host": host}).status_code == 503
    assert Client().get("/async/", headers={"Host": host}).status_code == 503
    assert Client().get("/", headers={"Host": "other.example."}).status_code == 200


@override_settings(SITE_ID=None, ALLOWED_HOSTS=["example.com", "other.example", "unknown.example"])
@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", 503),
        ("EXAMPLE.com", 503),
        ("example.com:8000", 503),
        ("other.example", 200),
        ("unknown.example", 200),  # no Site for this host: only the global switch applies
        ("evil.example", 400),  # DisallowedHost: Django's own 400, never a 500 from us
    ],
)
def test_site_from_host(host: str, expected: int) -> None:
    Site.objects.create(domain="other.example", name="Other")
    turn(True)
    assert Client().get("/async/", headers={"Host": host}).status_code == expected


@override_settings(SITE_ID=None, ALLOWED_HOSTS=["unknown.example"])
def test_unknown_host_gets_the_global_switch() -> None:
    turn(True, site_id=None)
    assert Client().get("/async/", headers={"Host": "unknown.example"}).status_code == 503
