"""Pure matching: ignored-URL patterns (RE2, one program for many), networks and client IPs."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
import re2
from django.test import Client, override_settings

from maintenance_flags import exemptions
from tests.utils import turn

pytestmark = pytest.mark.django_db


@override_settings(MAINTENANCE_ADMIN_IGNORED_URLS=[re.compile("^admin"), None, "^ok/"])
def test_non_string_patterns_in_settings_are_skipped() -> None:
    turn(True)
    assert Client().get("/").status_code == 503
    assert Client().get("/ok/").status_code == 404


@pytest.mark.parametrize(("error", "message"), [(b"bad \\1", "bad \\1"), ("text", "text"), (None, "")])
def test_pattern_errors_are_described_in_text(monkeypatch: pytest.MonkeyPatch, error: Any, message: str) -> None:
    """RE2 reports errors as bytes, text or nothing: the PatternError says it in text."""

    def failing(pattern: str, options: Any) -> Any:
        raise re2.error(*([] if error is None else [error]))

    monkeypatch.setattr(re2, "compile", failing)
    with pytest.raises(exemptions.PatternError) as raised:
        exemptions.compile_pattern(f"^described-{message}-{error!r}")  # not compiled before (memoised)
    assert str(raised.value) == message


@override_settings(MAINTENANCE_ADMIN_IGNORED_URLS=["(bad", "^ok/"])
def test_bad_settings_pattern_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    turn(True)
    assert Client().get("/ok/").status_code == 404
    assert Client().get("/").status_code == 503
    assert "does not compile" in caplog.text


def test_networks() -> None:
    assert exemptions.parse_network("::ffff:10.0.0.0/104") == ipaddress.ip_network("10.0.0.0/8")
    assert exemptions.parse_network("2001:db8::1/32") == ipaddress.ip_network("2001:db8::/32")
    assert exemptions.networks(["10.0.0.1", "nonsense", "::1"]) == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )


def test_patterns_are_matched_as_one_program() -> None:
    from maintenance_flags import exemptions

    matcher = exemptions.combined_matcher(("^admin", "/ignored-page/$", "(bad"))
    assert matcher.match("admin/login/") is not None
    assert matcher.match("ignored-page/") is not None
    assert matcher.match("ignored-page/x") is None
    assert exemptions.combined_matcher(("(bad",)).match("anything") is None


def test_patterns_too_large_for_one_program_are_matched_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from maintenance_flags import exemptions

    real = exemptions.compile_pattern

    def no_joined_programs(pattern: str) -> Any:
        if pattern.startswith("(?:"):
            raise exemptions.PatternError("pattern too large - compile failed")
        return real(pattern)

    monkeypatch.setattr(exemptions, "compile_pattern", no_joined_programs)
    matcher = exemptions.combined_matcher(("^admin", "^ignored-page/$", "^one-by-one/"))  # not memoised before
    assert matcher.match("ignored-page/") is not None
    assert matcher.match("one-by-one/x") is not None
    assert matcher.match("elsewhere/") is None


def test_a_lone_surrogate_in_a_pattern_is_refused() -> None:
    from maintenance_flags import exemptions

    with pytest.raises(exemptions.PatternError, match="not valid Unicode"):
        exemptions.compile_pattern("^\ud800")
