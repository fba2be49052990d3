from __future__ import annotations

import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings

from maintenance_flags.context_processors import maintenance
from maintenance_flags.models import IgnoredURL
from maintenance_flags.templatetags.maintenance_flags import banner_html
from tests.conftest import turn

pytestmark = pytest.mark.django_db

ON_TEXT = "Maintenance mode is on"


def test_no_banner_when_off(staff_client: Client) -> None:
    html = staff_client.get("/").content.decode()
    assert ON_TEXT not in html
    assert 'id="state">off<' in html


def test_banner_for_staff(staff_client: Client) -> None:
    turn(True)
    html = staff_client.get("/").content.decode()
    assert ON_TEXT in html
    assert 'id="state">on<' in html


@override_settings(INTERNAL_IPS=["127.0.0.1"])
def test_banner_for_allowed_ip() -> None:
    turn(True)
    assert ON_TEXT in Client().get("/").content.decode()


def test_banner_for_visitor_on_ignored_url() -> None:
    IgnoredURL.objects.create(pattern="^ignored-page/$")
    turn(True)
    html = Client().get("/ignored-page/").content.decode()
    assert "under maintenance" in html
    assert ON_TEXT not in html


def test_no_banner_on_ignored_url_when_off() -> None:
    IgnoredURL.objects.create(pattern="^ignored-page/$")
    assert "maintenance-banner" not in Client().get("/ignored-page/").content.decode()


def test_tag_without_request_renders_nothing() -> None:
    turn(True)
    assert Template("{% load maintenance_flags %}[{% maintenance_banner %}]").render(Context({})) == "[]"


def test_tag_and_processor_without_middleware(django_user_model: type) -> None:
    """Outside the middleware (e.g. a page rendered by another path) the same decision is made."""
    turn(True)
    request = RequestFactory().get("/")
    request.user = django_user_model.objects.create_user("s", is_staff=True)
    assert ON_TEXT in banner_html(request)
    assert maintenance(request) == {"maintenance_mode": True}
    anonymous = RequestFactory().get("/")
    assert banner_html(anonymous) == ""  # blocked visitors get the 503 page, not a banner


def test_processor_off() -> None:
    assert maintenance(RequestFactory().get("/")) == {"maintenance_mode": False}
