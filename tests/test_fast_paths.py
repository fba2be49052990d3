"""The memos on the hot paths: settings, the Accept decision, the built-in page, quiet snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.test.signals import template_rendered

from maintenance_flags.responses import cached_maintenance_response, maintenance_response, prefers_json
from maintenance_flags.snapshot import Snapshot, load_snapshot
from maintenance_flags.state import state_for_request
from maintenance_flags.store import store
from tests.conftest import BUILTIN_ONLY, turn

pytestmark = pytest.mark.django_db


@pytest.fixture
def renders() -> Iterator[list[str]]:
    names: list[str] = []

    def rendered(sender: Any, template: Any, **kwargs: Any) -> None:
        names.append(template.name)

    template_rendered.connect(rendered)
    yield names
    template_rendered.disconnect(rendered)


@override_settings(TEMPLATES=BUILTIN_ONLY)
def test_builtin_page_is_rendered_once_per_ttl(renders: list[str]) -> None:
    turn(True)
    first = Client().get("/")
    second = Client().get("/")
    assert first.status_code == second.status_code == 503
    assert first.content == second.content
    assert renders.count("maintenance_flags/503.html") == 1
    french = Client().get("/", headers={"Accept-Language": "fr"})
    assert french.content != first.content  # one page per language
    assert renders.count("maintenance_flags/503.html") == 2


@override_settings(TEMPLATES=BUILTIN_ONLY)
def test_builtin_page_follows_the_message(renders: list[str]) -> None:
    from maintenance_flags.switches import set_switch

    set_switch("maintenance_mode_site_1", True, message="first")
    assert b"first" in Client().get("/").content
    set_switch("maintenance_mode_site_1", True, message="second")
    assert b"second" in Client().get("/").content


@override_settings(TEMPLATES=BUILTIN_ONLY, MAINTENANCE_STATE_TTL=0)
def test_with_ttl_zero_every_request_reads_and_renders(renders: list[str]) -> None:
    turn(True)
    Client().get("/")
    Client().get("/")
    assert renders.count("maintenance_flags/503.html") == 2  # a new state each request: nothing kept


def test_project_template_is_rendered_every_time(renders: list[str]) -> None:
    turn(True)
    Client().get("/")
    Client().get("/")
    assert renders.count("503.html") == 2  # testproject/templates/503.html may use the request


@override_settings(MAINTENANCE_503_PRERENDER=True)
def test_prerendered_project_template_is_rendered_once(renders: list[str]) -> None:
    turn(True)
    first = Client().get("/")
    second = Client().get("/")
    assert first.status_code == second.status_code == 503
    assert b"served from testproject/templates/503.html" in second.content
    assert first.content == second.content
    assert renders.count("503.html") == 1
    assert async_to_sync(AsyncClient().get)("/async/").content == first.content
    assert renders.count("503.html") == 1  # the async stack serves it without a thread hop


@override_settings(TEMPLATES=BUILTIN_ONLY)
def test_async_stack_serves_the_memoised_page_without_rendering(renders: list[str]) -> None:
    turn(True)
    request = RequestFactory().get("/")
    state = state_for_request(store.get(), request)
    assert cached_maintenance_response(request, state) is None  # not rendered yet
    assert Client().get("/").status_code == 503
    response = cached_maintenance_response(request, state)
    assert response is not None
    assert response.status_code == 503
    assert response["X-Maintenance-Mode"] == "on"
    assert async_to_sync(AsyncClient().get)("/async/").status_code == 503
    assert renders.count("maintenance_flags/503.html") == 1


def test_a_project_page_is_never_served_without_rendering() -> None:
    turn(True)
    request = RequestFactory().get("/")
    state = state_for_request(store.get(), request)
    assert Client().get("/").status_code == 503
    assert cached_maintenance_response(request, state) is None  # made per request, never kept


@override_settings(TEMPLATES=BUILTIN_ONLY)
def test_responses_share_a_body_but_nothing_else() -> None:
    turn(True)
    request = RequestFactory().get("/")
    state = state_for_request(store.get(), request)
    first = maintenance_response(request, state)
    first["X-Added-By-A-Middleware"] = "1"
    first.set_cookie("seen", "1")
    first.content = b"changed"
    second = maintenance_response(request, state)
    assert second is not first
    assert "X-Added-By-A-Middleware" not in second
    assert not second.cookies
    assert b"We" in second.content
    assert second["Vary"] == "Accept"
    assert second["Content-Type"] == "text/html; charset=utf-8"


def test_retry_after_counts_seconds_while_the_page_is_kept(clock: list[datetime]) -> None:
    from maintenance_flags.switches import set_switch

    set_switch("maintenance_mode_site_1", True, ends_at=clock[0] + timedelta(minutes=30))
    with override_settings(TEMPLATES=BUILTIN_ONLY):
        first = Client().get("/")
        clock[0] += timedelta(seconds=5)
        second = Client().get("/")
    assert int(first["Retry-After"]) - int(second["Retry-After"]) == 5
    assert first.content == second.content  # "in about 30 minutes" both times


def test_json_needs_no_rendering() -> None:
    request = RequestFactory().get("/", headers={"Accept": "application/json"})
    state = state_for_request(load_snapshot(), request)
    response = cached_maintenance_response(request, state)
    assert response is not None
    assert response["Content-Type"] == "application/problem+json"


def test_accept_decision_is_memoised() -> None:
    from maintenance_flags.responses import _accept_prefers_json

    _accept_prefers_json.cache_clear()
    for _ in range(3):
        assert prefers_json(RequestFactory().get("/", headers={"Accept": "application/json"}))
    assert _accept_prefers_json.cache_info().hits == 2


def test_unknown_state_is_never_quiet() -> None:
    """With no known state, MAINTENANCE_FAIL_MODE decides: the open-site fast path must not."""
    from maintenance_flags.decisions import evaluate
    from maintenance_flags.snapshot import UNKNOWN

    assert not UNKNOWN.quiet
    assert evaluate(RequestFactory().get("/"), UNKNOWN).blocked
    with override_settings(MAINTENANCE_FAIL_MODE="open"):
        assert not evaluate(RequestFactory().get("/"), UNKNOWN).blocked


def test_quiet_snapshot() -> None:
    assert load_snapshot().quiet
    turn(True, site_id=None)
    assert not load_snapshot().quiet
    assert Snapshot(switches={"maintenance_mode_site_1": False}).quiet  # a switch that is off


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
    matcher = exemptions.combined_matcher.__wrapped__(("^admin", "^ignored-page/$"))
    assert isinstance(matcher, exemptions.AnyOf)
    assert matcher.match("ignored-page/") is not None
    assert matcher.match("elsewhere/") is None


@override_settings(TEMPLATES=BUILTIN_ONLY)
def test_page_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from maintenance_flags import responses

    monkeypatch.setattr(responses, "MEMO_SIZE", 1)
    turn(True)
    Client().get("/")
    Client().get("/", headers={"Accept-Language": "fr"})  # a second page: the memo starts over
    state = state_for_request(store.get(), RequestFactory().get("/"))
    assert len(state.derived.bodies) == 1


def test_path_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from maintenance_flags import decisions

    monkeypatch.setattr(decisions, "SEEN_PATHS", 2)
    turn(True)
    for path in ("/a/", "/b/", "/c/", "/admin/"):
        Client().get(path)
    prepared = decisions.exemptions_for(store.get(), 1)
    assert len(prepared.seen) <= 2
    assert prepared.path_ignored("/admin/", writes_only=False) and not prepared.path_ignored("/a/", writes_only=False)


def test_exemptions_follow_settings_changed_under_one_snapshot() -> None:
    turn(True)
    client = Client(REMOTE_ADDR="10.1.2.3")
    assert client.get("/").status_code == 503
    with override_settings(MAINTENANCE_ALLOWED_IPS=["10.1.2.0/24"]):
        assert client.get("/").status_code == 200
    assert client.get("/").status_code == 503


def test_a_lone_surrogate_in_a_pattern_is_refused() -> None:
    from maintenance_flags import exemptions

    with pytest.raises(exemptions.PatternError, match="not valid Unicode"):
        exemptions.compile_pattern("^\ud800")


def test_state_memo_lasts_until_the_next_change(clock: list[datetime]) -> None:
    """Memoised per snapshot, the state still changes on time: here a window opening while the
    switch keeps the site down moves the expected end, and so Retry-After."""
    from maintenance_flags.models import MaintenanceWindow
    from maintenance_flags.switches import set_switch

    now = clock[0]
    set_switch("maintenance_mode_site_1", True, ends_at=now + timedelta(minutes=10))
    MaintenanceWindow.objects.create(
        site_id=1, starts_at=now + timedelta(minutes=5), ends_at=now + timedelta(minutes=60), message="Upgrade"
    )
    client = Client()
    assert client.get("/")["Retry-After"] == "600"
    snapshot = store.get()
    clock[0] += timedelta(minutes=5)
    response = client.get("/")
    assert store.get() is snapshot  # no refresh in between
    assert response["Retry-After"] == "3300"
    clock[0] += timedelta(minutes=56)
    assert client.get("/").status_code == 200


def test_state_without_a_site_is_memoised_until_the_global_end(clock: list[datetime]) -> None:
    from maintenance_flags.state import state_for_site_id
    from maintenance_flags.switches import set_switch

    set_switch("maintenance_mode_all_sites", True, ends_at=clock[0] + timedelta(minutes=1))
    snapshot = store.get()
    assert state_for_site_id(snapshot, None) is state_for_site_id(snapshot, None)  # memoised
    assert state_for_site_id(snapshot, None).active
    clock[0] += timedelta(minutes=1)
    assert not state_for_site_id(snapshot, None).active


@override_settings(SITE_ID=None, ALLOWED_HOSTS=["example.com", "unknown.example"])
def test_open_verdict_by_host_is_shared() -> None:
    from maintenance_flags.decisions import evaluate

    snapshot = store.get()
    first = evaluate(RequestFactory().get("/", HTTP_HOST="example.com"), snapshot)
    second = evaluate(RequestFactory().get("/", HTTP_HOST="example.com"), snapshot)
    assert first is second
    assert first.state.site_id == 1 and not first.blocked
    elsewhere = evaluate(RequestFactory().get("/", HTTP_HOST="unknown.example"), snapshot)
    assert elsewhere is not first and elsewhere.state.site is None


def test_async_unsafe_request_is_served_and_forgotten() -> None:
    from maintenance_flags.audit import current_request

    response = async_to_sync(AsyncClient().post)("/async/")
    assert response.status_code == 200
    assert current_request.get() is None


def test_a_state_read_is_six_queries(django_assert_num_queries: Any) -> None:
    """README and docs/deployment.md: each refresh is six small queries."""
    with django_assert_num_queries(6):
        load_snapshot()
