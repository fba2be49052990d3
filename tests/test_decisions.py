"""Who gets through: the verdicts the middleware, decorators and banner share."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client, RequestFactory, override_settings
from pytest_django import DjangoAssertNumQueries

from maintenance_flags.snapshot import UNKNOWN
from maintenance_flags.store import store
from tests.utils import turn

pytestmark = pytest.mark.django_db


def test_privileged_by_ip_on_an_ignored_path() -> None:
    """The banner's wording: an allowed IP on an ignored URL is told it is let through."""
    from maintenance_flags.decisions import LET_THROUGH_IGNORED, privileged, verdict
    from maintenance_flags.state import SiteState

    state = SiteState(True, "site switch", site_id=1)
    on_admin = verdict(state, blocked=False, let_through=LET_THROUGH_IGNORED)
    request = RequestFactory().get("/admin/", REMOTE_ADDR="10.9.8.7")
    with override_settings(MAINTENANCE_ALLOWED_IPS=["10.9.8.0/24"]):
        assert privileged(request, on_admin)
    request.user = AnonymousUser()
    assert not privileged(request, on_admin)


def test_unknown_state_is_never_quiet() -> None:
    """With no known state, MAINTENANCE_FAIL_MODE decides: the open-site fast path must not."""
    from maintenance_flags.decisions import evaluate

    assert not UNKNOWN.quiet
    assert evaluate(RequestFactory().get("/"), UNKNOWN).blocked
    with override_settings(MAINTENANCE_FAIL_MODE="open"):
        assert not evaluate(RequestFactory().get("/"), UNKNOWN).blocked


def test_path_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A path's exemption is matched once per snapshot, up to SEEN_PATHS paths; then the memo starts
    over (the path is matched again), and the answers stay right. Counted with a spy on the matcher."""
    from maintenance_flags import decisions, exemptions

    matched: list[str] = []
    real = exemptions.matches

    def counting(matcher: exemptions.Matcher, path_info: str) -> bool:
        matched.append(path_info)
        return real(matcher, path_info)

    monkeypatch.setattr(decisions, "SEEN_PATHS", 2)
    monkeypatch.setattr(exemptions, "matches", counting)
    turn(True)
    client = Client()
    assert client.get("/a/").status_code == 503
    assert client.get("/admin/login/").status_code != 503
    seen_two = matched.count("/a/")
    assert client.get("/a/").status_code == 503
    assert matched.count("/a/") == seen_two  # remembered: not matched again
    assert client.get("/c/").status_code == 503  # a third path: the memo starts over
    assert client.get("/a/").status_code == 503
    assert matched.count("/a/") > seen_two  # forgotten: matched again
    assert client.get("/admin/login/").status_code != 503


def test_exemptions_follow_settings_changed_under_one_snapshot() -> None:
    turn(True)
    client = Client(REMOTE_ADDR="10.1.2.3")
    assert client.get("/").status_code == 503
    with override_settings(MAINTENANCE_ALLOWED_IPS=["10.1.2.0/24"]):
        assert client.get("/").status_code == 200
    assert client.get("/").status_code == 503


@override_settings(SITE_ID=None, ALLOWED_HOSTS=["example.com", "unknown.example"])
def test_open_verdict_by_host_is_kept_for_the_snapshot(django_assert_num_queries: DjangoAssertNumQueries) -> None:
    from maintenance_flags.decisions import evaluate

    snapshot = store.get()
    first = evaluate(RequestFactory().get("/", HTTP_HOST="example.com"), snapshot)
    with django_assert_num_queries(0):
        second = evaluate(RequestFactory().get("/", HTTP_HOST="example.com"), snapshot)
    assert second == first
    assert first.state.site_id == 1 and not first.blocked
    elsewhere = evaluate(RequestFactory().get("/", HTTP_HOST="unknown.example"), snapshot)
    assert elsewhere != first and elsewhere.state.site is None


def test_prepared_exemptions_follow_settings_changed_without_a_signal(settings: Any) -> None:
    """Memos derived from settings key on ``conf.generation``: a settings object swapped without
    ``setting_changed`` (pytest-django's ``del settings.X``) is seen by the very next decision."""
    from maintenance_flags.decisions import exemptions_for

    settings.MAINTENANCE_ALLOWED_IPS = ["10.1.2.0/24"]
    snapshot = store.get()
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.2.3")
    assert exemptions_for(snapshot, 1).client_allowed(request)
    del settings.MAINTENANCE_ALLOWED_IPS
    assert not exemptions_for(snapshot, 1).client_allowed(request)
