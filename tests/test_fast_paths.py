"""The memos on the hot paths: settings, the Accept decision, the built-in page, quiet snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.test.signals import template_rendered

import maintenance_flags
from maintenance_flags import conf as conf_module
from maintenance_flags.conf import conf
from maintenance_flags.responses import cached_maintenance_response, prefers_json
from maintenance_flags.state import Snapshot, load_snapshot, state_for_request
from tests.conftest import turn

pytestmark = pytest.mark.django_db

APP_TEMPLATES = str(Path(maintenance_flags.__file__).parent / "templates")
BUILTIN_ONLY = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            "loaders": [("django.template.loaders.filesystem.Loader", [APP_TEMPLATES])],
            "context_processors": ["django.template.context_processors.request"],
        },
    }
]


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
def test_no_page_memo_with_ttl_zero(renders: list[str]) -> None:
    turn(True)
    Client().get("/")
    Client().get("/")
    assert renders.count("maintenance_flags/503.html") == 2


def test_project_template_is_rendered_every_time(renders: list[str]) -> None:
    turn(True)
    Client().get("/")
    Client().get("/")
    assert renders.count("503.html") == 2  # testproject/templates/503.html may use the request


@override_settings(TEMPLATES=BUILTIN_ONLY)
def test_async_stack_serves_the_memoised_page_without_rendering(renders: list[str]) -> None:
    turn(True)
    request = RequestFactory().get("/")
    state = state_for_request(load_snapshot(), request)
    assert cached_maintenance_response(request, state) is None  # not rendered yet
    assert Client().get("/").status_code == 503
    response = cached_maintenance_response(request, state)
    assert response is not None
    assert response.status_code == 503
    assert response["X-Maintenance-Mode"] == "on"
    assert async_to_sync(AsyncClient().get)("/async/").status_code == 503
    assert renders.count("maintenance_flags/503.html") == 1


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


def test_settings_memo_follows_override_settings() -> None:
    assert conf.MAINTENANCE_RETRY_AFTER == 3600
    with override_settings(MAINTENANCE_RETRY_AFTER=60):
        assert conf.MAINTENANCE_RETRY_AFTER == 60
    assert conf.MAINTENANCE_RETRY_AFTER == 3600


def test_settings_assigned_directly_need_forget_settings() -> None:
    assert conf.MAINTENANCE_RETRY_AFTER == 3600
    settings.MAINTENANCE_RETRY_AFTER = 61
    try:
        assert conf.MAINTENANCE_RETRY_AFTER == 3600  # memoised
        conf_module.forget_settings()
        assert conf.MAINTENANCE_RETRY_AFTER == 61
    finally:
        del settings.MAINTENANCE_RETRY_AFTER
        conf_module.forget_settings()


def test_unknown_state_is_never_quiet() -> None:
    """With no known state, MAINTENANCE_FAIL_MODE decides: the open-site fast path must not."""
    from maintenance_flags.decisions import evaluate
    from maintenance_flags.state import UNKNOWN

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

    monkeypatch.setattr(responses, "PAGE_CACHE_SIZE", 1)
    turn(True)
    Client().get("/")
    Client().get("/", headers={"Accept-Language": "fr"})  # a second page: the memo starts over
    assert len(responses._pages) == 1


def test_a_lone_surrogate_in_a_pattern_is_refused() -> None:
    from maintenance_flags import exemptions

    with pytest.raises(exemptions.PatternError, match="not valid Unicode"):
        exemptions.compile_pattern("^\ud800")
