"""Ignored URLs: what may be exempt, and what health checks may do in read-only mode."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from maintenance_flags.models import IgnoredURL
from tests.utils import run, turn

pytestmark = pytest.mark.django_db

WHOLE_SITE = ["^", "/", "^/", ".*", "^.*", "^.*$", "(?:)", "^/?", "|x", "x*"]


@pytest.mark.parametrize("pattern", WHOLE_SITE)
def test_a_pattern_for_the_whole_site_is_refused(pattern: str) -> None:
    with pytest.raises(ValidationError) as info:
        IgnoredURL(pattern=pattern).full_clean()
    assert "matches every path" in str(info.value)


@pytest.mark.parametrize("pattern", ["^$", "^/$", "^admin/", "^ignored-page/$", "^(api|static)/"])
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    IgnoredURL(pattern=pattern).full_clean()


@pytest.mark.parametrize("pattern", ["^", "/"])
def test_a_whole_site_row_already_stored_is_skipped_and_logged(pattern: str, caplog: pytest.LogCaptureFixture) -> None:
    """A security fix: 1.0 accepted such a row, and the whole site stayed up during maintenance."""
    IgnoredURL.objects.bulk_create([IgnoredURL(pattern=pattern), IgnoredURL(pattern="^ignored-page/$")])
    turn(True)
    with caplog.at_level(logging.WARNING, logger="maintenance_flags"):
        assert Client().get("/").status_code == 503
        assert Client().get("/ignored-page/").status_code == 200
    assert "matches every path" in caplog.text


def test_default_admin_pattern_is_a_prefix_and_can_be_narrowed(settings: object) -> None:
    """The README's note: ``^admin`` also exempts ``/administrator…``; ``^admin/`` does not."""
    turn(True)
    assert Client().get("/administrator/").status_code == 404  # exempt: served, and not found
    settings.MAINTENANCE_ADMIN_IGNORED_URLS = ["^admin/"]  # type: ignore[attr-defined]
    assert Client().get("/administrator/").status_code == 503
    assert Client().get("/admin/login/").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz/", "/health"])
def test_health_paths_in_read_only_mode_are_exempt_for_safe_methods_only(path: str) -> None:
    run("readonly", "on")
    assert Client().get(path).status_code != 503
    assert Client().post(path).status_code == 503
    run("readonly", "off")
    run("on")
    assert Client().post(path).status_code != 503  # full maintenance: health paths stay exempt
