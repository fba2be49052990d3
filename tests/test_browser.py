"""Real browser: a staff user turns maintenance on and off in the admin; visitors see the effect.

Debian's Chromium, driven by Playwright's sync API, against pytest-django's ``live_server``
(a thread of this process, on a transactional test database). Screenshots of the 503 page,
the banner and the admin page, on a desktop and a phone-sized viewport, go to ``artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db.models import Q
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from waffle.models import Switch

from maintenance_flags.models import IgnoredURL
from maintenance_flags.names import ALL_SITES_SWITCH, site_switch_name
from tests.browser_support import (
    DESKTOP,
    PHONE,
    launch_chromium,
    log_in,
    new_context,
    overflows_horizontally,
    screenshot,
    watch_requests,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STAFF = ("staff", "staff-password")
BANNER = "Maintenance mode is on"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs an asyncio event loop in this thread (inside a greenlet) for as
    # long as it is started. Django then sees a "running event loop" and refuses the ORM calls made
    # by this module's tests and by pytest-django's flush between them (SynchronousOnlyOperation),
    # although every one of them is plain synchronous code. Allow them, in this module only, while
    # the browser runs; the server under test runs in its own thread, where no loop runs, so its
    # async-safety checks stay on.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = launch_chromium(playwright)
            yield chromium
            chromium.close()


@pytest.fixture
def staff_user(django_user_model: Any) -> Any:
    """A staff user (not a superuser) who may change waffle switches and ignored URLs: an operator."""
    user = django_user_model.objects.create_user(STAFF[0], password=STAFF[1], is_staff=True)
    switches = Q(content_type__app_label="waffle", codename__in=["view_switch", "change_switch"])
    ignored_urls = Q(content_type__app_label="maintenance_flags", content_type__model="ignoredurl")
    user.user_permissions.add(*Permission.objects.filter(switches | ignored_urls))
    return user


class Contexts:
    """Opens browser contexts (each with its own cookies) on the live server; closes them all."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.opened: list[BrowserContext] = []

    def page(self, size: dict[str, Any] = DESKTOP) -> Page:
        context = new_context(self.browser, self.base_url, size)
        self.opened.append(context)
        return context.new_page()

    def staff_page(self, user: Any, size: dict[str, Any] = DESKTOP) -> Page:
        """A page already logged in as ``user`` (a session made by Django's test client)."""
        client = Client()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        page = self.page(size)
        page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": self.base_url}])
        return page

    def close(self) -> None:
        for context in self.opened:
            context.close()


@pytest.fixture
def contexts(browser: Browser, live_server: Any) -> Iterator[Contexts]:
    opened = Contexts(browser, live_server.url)
    yield opened
    opened.close()


def open_site_maintenance(page: Page) -> None:
    page.goto("/admin/")
    page.get_by_role("link", name="Site maintenance", exact=True).click()
    expect(page.get_by_role("heading", name="Site maintenance")).to_be_visible()


def tick_and_save(page: Page, label: str, on: bool) -> None:
    page.get_by_label(label, exact=True).set_checked(on)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messagelist")).to_contain_text(re.compile("Maintenance mode updated"))


def switch_is_on(name: str) -> bool:
    return bool(Switch.objects.get(name=name).active)


def test_staff_turns_maintenance_on_and_off(contexts: Contexts, staff_user: Any, live_server: Any) -> None:
    IgnoredURL.objects.create(pattern="^ignored-page/$", description="stays up")
    staff = contexts.page()
    log_in(staff, *STAFF)  # through the admin's login form, as a person would
    visitor = contexts.page()
    phone_visitor = contexts.page(PHONE)
    phone_staff = contexts.staff_page(staff_user, PHONE)

    # Our admin page, reached from the admin index.
    open_site_maintenance(staff)
    checkbox = staff.get_by_label("In maintenance mode: example.com", exact=True)
    expect(checkbox).not_to_be_checked()
    tick_and_save(staff, "In maintenance mode: example.com", True)
    expect(staff.locator(".messagelist")).to_contain_text("example.com: maintenance on")
    expect(checkbox).to_be_checked()
    screenshot(staff, "admin-desktop")
    open_site_maintenance(phone_staff)
    screenshot(phone_staff, "admin-phone")
    assert switch_is_on(site_switch_name(1))

    # Anonymous visitors get the 503 page, with no external assets, on both sizes.
    for page, size in ((visitor, "desktop"), (phone_visitor, "phone")):
        requested = watch_requests(page)
        response = page.goto("/")
        assert response is not None
        assert response.status == 503
        assert response.headers["x-maintenance-mode"] == "on"
        assert response.headers["retry-after"] == "3600"
        expect(page.get_by_role("heading", level=1)).to_have_text("We’ll be back soon")
        expect(page.locator("body")).to_contain_text("This site is down for maintenance. Please try again later.")
        assert not overflows_horizontally(page)
        assert all(url.startswith(live_server.url) for url in requested), requested
        screenshot(page, f"503-{size}")

    # The ignored page stays up, and tells visitors why other pages may be down.
    response = visitor.goto("/ignored-page/")
    assert response is not None
    assert response.status == 200
    expect(visitor.get_by_role("heading", name="Ignored page")).to_be_visible()
    expect(visitor.get_by_role("status")).to_contain_text("under maintenance")

    # Staff get through and see the banner, on both sizes.
    for page, size in ((staff, "desktop"), (phone_staff, "phone")):
        response = page.goto("/")
        assert response is not None
        assert response.status == 200
        expect(page.get_by_role("status")).to_contain_text(BANNER)
        expect(page.locator("#state")).to_have_text("on")
        assert not overflows_horizontally(page)
        screenshot(page, f"banner-{size}")

    # waffle's own Switch admin shows the switch on.
    staff.goto("/admin/waffle/switch/?maintenance=yes")
    row = staff.locator("#result_list tbody tr").filter(
        has=staff.get_by_role("link", name=site_switch_name(1), exact=True)
    )
    expect(row.locator("td.field-active img")).to_have_attribute("alt", "True")

    # Unticking restores the site.
    open_site_maintenance(staff)
    tick_and_save(staff, "In maintenance mode: example.com", False)
    expect(staff.locator(".messagelist")).to_contain_text("example.com: maintenance off")
    assert not switch_is_on(site_switch_name(1))
    response = visitor.goto("/")
    assert response is not None
    assert response.status == 200
    response = staff.goto("/")
    assert response is not None
    assert response.status == 200
    expect(staff.get_by_role("status")).to_have_count(0)
    expect(staff.locator("#state")).to_have_text("off")


def test_all_sites_checkbox(contexts: Contexts, staff_user: Any) -> None:
    staff = contexts.staff_page(staff_user)
    visitor = contexts.page()

    open_site_maintenance(staff)
    tick_and_save(staff, "All sites", True)
    expect(staff.locator(".messagelist")).to_contain_text("all sites: maintenance on")
    expect(staff.get_by_label("All sites", exact=True)).to_be_checked()
    expect(staff.get_by_label("In maintenance mode: example.com", exact=True)).not_to_be_checked()
    assert switch_is_on(ALL_SITES_SWITCH)
    assert not switch_is_on(site_switch_name(1))
    response = visitor.goto("/")
    assert response is not None
    assert response.status == 503

    tick_and_save(staff, "All sites", False)
    expect(staff.locator(".messagelist")).to_contain_text("all sites: maintenance off")
    assert not switch_is_on(ALL_SITES_SWITCH)
    response = visitor.goto("/")
    assert response is not None
    assert response.status == 200


def test_waffle_bulk_enable_does_not_take_the_site_down(contexts: Contexts, staff_user: Any) -> None:
    Switch.objects.create(name="feature_checkout")
    staff = contexts.staff_page(staff_user)
    visitor = contexts.page()

    staff.goto("/admin/waffle/switch/")
    staff.locator("#action-toggle").check()  # select every switch on the page
    staff.locator("select[name=action]").select_option("enable_switches")
    staff.locator(".actions button[name=index]").click()  # "Go" (Django 5.2) or "Run" (6.1)

    warning = staff.locator(".messagelist .warning")
    expect(warning).to_contain_text("maintenance switches")
    expect(warning).to_contain_text(ALL_SITES_SWITCH)
    screenshot(staff, "waffle-bulk-warning-desktop")
    assert switch_is_on("feature_checkout")  # other switches change as usual
    assert not switch_is_on(ALL_SITES_SWITCH)
    assert not switch_is_on(site_switch_name(1))
    response = visitor.goto("/")
    assert response is not None
    assert response.status == 200

    # The warning points to our page.
    warning.get_by_role("link", name="Site maintenance").click()
    expect(staff.get_by_role("heading", name="Site maintenance")).to_be_visible()
