from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import django.contrib.admin
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings

from maintenance_flags.context_processors import maintenance
from maintenance_flags.models import IgnoredURL
from maintenance_flags.templatetags.maintenance_flags import banner_html
from tests.utils import APP_TEMPLATES, django_templates, locmem, turn

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


def test_tag_and_processor_without_middleware(django_user_model: type[User]) -> None:
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


# --- the admin ------------------------------------------------------------------------------------

PROJECT_TEMPLATES = str(settings.BASE_DIR / "templates")
ADMIN_TEMPLATES = str(Path(django.contrib.admin.__file__).resolve().parent / "templates")
CONTEXT_PROCESSORS = cast("dict[str, Any]", settings.TEMPLATES[0])["OPTIONS"]["context_processors"]


def admin_templates(*first: Any) -> list[dict[str, Any]]:
    """The demo's templates, with ``maintenance_flags`` found before ``django.contrib.admin`` (as when it
    is listed above it in INSTALLED_APPS), after the loaders given."""
    return django_templates(
        *first,
        ("django.template.loaders.filesystem.Loader", [PROJECT_TEMPLATES, APP_TEMPLATES, ADMIN_TEMPLATES]),
        "django.template.loaders.app_directories.Loader",
    )


def use_templates(settings: Any, templates: list[dict[str, Any]]) -> None:
    templates[0]["OPTIONS"]["context_processors"] = CONTEXT_PROCESSORS  # the admin needs auth and messages
    settings.TEMPLATES = templates


@pytest.fixture
def admin_banner_templates(settings: Any) -> None:
    use_templates(settings, admin_templates())


@pytest.fixture
def superuser_client(django_user_model: Any) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    return client


@pytest.mark.parametrize("path", ["/admin/", "/admin/maintenance_flags/sitemaintenance/", "/admin/auth/user/"])
@pytest.mark.usefixtures("admin_banner_templates")
def test_banner_in_the_admin(superuser_client: Client, path: str) -> None:
    turn(True)
    response = superuser_client.get(path)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count(ON_TEXT) == 1
    assert html.index(ON_TEXT) < html.index('id="header"')  # on top of the page
    assert "Django administration" in html  # Django's own base_site, extended
    turn(False)
    assert "maintenance-banner" not in superuser_client.get(path).content.decode()


@pytest.mark.usefixtures("admin_banner_templates")
def test_banner_on_the_admin_login_page() -> None:
    turn(True)
    html = Client().get("/admin/login/").content.decode()
    assert "under maintenance" in html
    assert ON_TEXT not in html


OWN_BASE_SITE = '{% extends "admin/base.html" %}{% block branding %}Our own admin{% endblock %}'
# The README's snippet for a project with its own admin/base_site.html.
SNIPPET = (
    '{% extends "admin/base.html" %}{% load maintenance_flags %}{% block branding %}Our own admin{% endblock %}'
    "{% block header %}{% maintenance_banner %}{{ block.super }}{% endblock %}"
)


def test_a_projects_own_base_site_wins(superuser_client: Client, settings: Any) -> None:
    use_templates(settings, admin_templates(locmem({"admin/base_site.html": OWN_BASE_SITE})))
    turn(True)
    html = superuser_client.get("/admin/").content.decode()
    assert "Our own admin" in html
    assert ON_TEXT not in html


@pytest.mark.parametrize("app_first", [True, False], ids=["app-before-admin", "admin-before-app"])
def test_the_documented_snippet_shows_the_banner_once(superuser_client: Client, settings: Any, app_first: bool) -> None:
    own = locmem({"admin/base_site.html": SNIPPET})
    if app_first:
        use_templates(settings, admin_templates(own))
    else:
        use_templates(settings, django_templates(own, "django.template.loaders.app_directories.Loader"))
    turn(True)
    html = superuser_client.get("/admin/").content.decode()
    assert "Our own admin" in html
    assert html.count(ON_TEXT) == 1


def test_staff_on_an_ignored_url_sees_the_staff_banner(staff_client: Client) -> None:
    from maintenance_flags.models import IgnoredURL

    IgnoredURL.objects.create(pattern="^ignored-page/$")
    turn(True)
    assert "Maintenance mode is on" in staff_client.get("/ignored-page/").content.decode()
    html = Client().get("/ignored-page/").content.decode()
    assert "under maintenance" in html
    assert "Maintenance mode is on" not in html


@override_settings(INTERNAL_IPS=["127.0.0.1"])
def test_allowed_ip_on_an_ignored_url_sees_the_staff_banner() -> None:
    from maintenance_flags.models import IgnoredURL

    IgnoredURL.objects.create(pattern="^ignored-page/$")
    turn(True)
    assert "Maintenance mode is on" in Client().get("/ignored-page/").content.decode()
