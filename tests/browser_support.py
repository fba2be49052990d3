"""Helpers for the real-browser tests: Debian's Chromium driven by Playwright, screenshots.

Playwright's own browser download cannot work on CI, so the tests drive the system
``chromium`` (Debian package, installed by ``make sysdeps``). A missing browser is a
failure, never a skip.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Playwright

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
TIMEOUT_MS = 10_000


def launch_chromium(playwright: Playwright) -> Browser:
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("The browser tests need Debian's chromium: `apt-get install chromium` (make sysdeps).")
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=30_000)


def new_context(browser: Browser, base_url: str, size: dict[str, Any] = DESKTOP) -> BrowserContext:
    context = browser.new_context(base_url=base_url, **size)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("input[type=submit]").click()
    page.wait_for_url("**/admin/")


def screenshot(page: Page, name: str) -> Path:
    """Save ``artifacts/<name>.png`` (the viewport) and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def overflows_horizontally(page: Page) -> bool:
    """Whether the page is wider than the viewport (a sideways scroll bar on a phone)."""
    return bool(page.evaluate("document.documentElement.scrollWidth > window.innerWidth"))


def watch_requests(page: Page) -> list[str]:
    """Collect every URL the page requests from now on."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls
