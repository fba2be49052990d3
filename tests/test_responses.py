"""The maintenance response: the page's wording (remaining time, read-only), and waits of any length."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.utils import translation

from maintenance_flags.conf import MAX_RETRY_AFTER
from maintenance_flags.names import readonly_switch_name, site_switch_name
from maintenance_flags.responses import cached_maintenance_response, maintenance_response, prefers_json
from maintenance_flags.snapshot import load_snapshot
from maintenance_flags.state import state_for_request
from maintenance_flags.store import store
from maintenance_flags.switches import set_switch
from tests.utils import BUILTIN_ONLY, django_templates, locmem, turn

pytestmark = pytest.mark.django_db

PATHS = ["/", "/async/"]
HTML = {"headers": {"Accept": "text/html"}}
JSON = {"headers": {"Accept": "application/json"}}


def get(path: str, **extra: Any) -> Any:
    """A GET through the sync (WSGI) or async (ASGI) stack, as the path's view is."""
    if path.startswith("/async"):
        return async_to_sync(AsyncClient().get)(path, **extra)
    return Client().get(path, **extra)


def text(response: Any) -> str:
    """The body with no-break spaces (Django keeps "1 hour" together) as plain ones."""
    return str(response.content.decode()).replace("\xa0", " ")


def pages(templates: str) -> Any:
    """The built-in page only, or the demo's own 503.html (which includes it)."""
    return override_settings(TEMPLATES=BUILTIN_ONLY) if templates == "builtin" else override_settings()


def down_until(ends_at: datetime) -> None:
    set_switch(site_switch_name(1), True, ends_at=ends_at)


# --- waits of any length: never a 500 --------------------------------------------------------------


@pytest.mark.parametrize("value", [10**12, 2**63, float("inf"), 10**400])
@pytest.mark.parametrize("templates", ["builtin", "demo"])
@pytest.mark.parametrize("path", PATHS)
def test_huge_retry_after_setting_is_capped(value: object, templates: str, path: str) -> None:
    turn(True)
    expected = MAX_RETRY_AFTER if value != float("inf") else 3600  # not a number of seconds: the default
    with override_settings(MAINTENANCE_RETRY_AFTER=value), pages(templates):
        page = get(path, **HTML)
        problem = get(path, **JSON)
    assert (page.status_code, problem.status_code) == (503, 503)
    assert page["Retry-After"] == problem["Retry-After"] == str(expected)
    assert "Expected back in about" in text(page)
    assert json.loads(problem.content)["status"] == 503


@pytest.mark.parametrize("value", [-5, 0])
def test_retry_after_setting_of_zero_or_less(value: int) -> None:
    turn(True)
    with override_settings(MAINTENANCE_RETRY_AFTER=value, TEMPLATES=BUILTIN_ONLY):
        response = get("/")
    assert response["Retry-After"] == "0"
    assert "Expected back shortly." in text(response)


@pytest.mark.parametrize(
    "ends_at",
    [datetime(9999, 12, 31, tzinfo=UTC), datetime.max.replace(tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)],
    ids=["9999-12-31", "datetime.max", "2200"],
)
@pytest.mark.parametrize("templates", ["builtin", "demo"])
@pytest.mark.parametrize("path", PATHS)
def test_planned_end_at_the_end_of_time(ends_at: datetime, templates: str, path: str) -> None:
    down_until(ends_at)
    with pages(templates):
        page = get(path, **HTML)
        problem = get(path, **JSON)
    assert (page.status_code, problem.status_code) == (503, 503)
    assert page["Retry-After"] == problem["Retry-After"] == str(MAX_RETRY_AFTER)
    assert "Expected back in about 1 year" in text(page)
    assert json.loads(problem.content)["detail"].startswith("This site is down")


def test_planned_end_within_the_cap_is_exact(clock: list[datetime]) -> None:
    down_until(clock[0] + timedelta(days=200))
    assert get("/")["Retry-After"] == str(200 * 86400)


# --- the remaining time, as the page words it -------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "wording"),
    [
        (1, "Expected back shortly."),
        (59, "Expected back shortly."),
        (60, "Expected back in about 1 minute."),
        (89, "Expected back in about 1 minute."),
        (90, "Expected back in about 2 minutes."),
        (3590, "Expected back in about 1 hour."),  # not "59 minutes"
        (3600, "Expected back in about 1 hour."),
        (5400, "Expected back in about 1 hour, 30 minutes."),
        (86400 - 20, "Expected back in about 1 day."),
        (2 * 86400 + 3 * 3600 + 29 * 60, "Expected back in about 2 days, 3 hours."),
        (2 * 86400 + 3 * 3600 + 31 * 60, "Expected back in about 2 days, 4 hours."),
    ],
)
@override_settings(TEMPLATES=BUILTIN_ONLY)
def test_remaining_time_is_rounded(clock: list[datetime], seconds: int, wording: str) -> None:
    down_until(clock[0] + timedelta(seconds=seconds))
    html = text(get("/"))
    assert wording in html
    assert "about 0 minutes" not in html


@override_settings(MAINTENANCE_RETRY_AFTER=3600, TEMPLATES=BUILTIN_ONLY)
def test_an_hour_reads_as_an_hour_while_the_clock_runs() -> None:
    turn(True)
    assert "Expected back in about 1 hour." in text(get("/"))


@override_settings(TEMPLATES=BUILTIN_ONLY)
def test_same_wording_same_page_new_wording_new_page(clock: list[datetime]) -> None:
    """The page is kept while its wording holds, and made again once the rounded time changes."""
    down_until(clock[0] + timedelta(minutes=30))
    first = get("/")
    clock[0] += timedelta(seconds=20)  # 29 min 40 s: still "about 30 minutes"
    second = get("/")
    clock[0] += timedelta(seconds=20)  # 29 min 20 s: "about 29 minutes"
    third = get("/")
    assert first.content == second.content
    assert "about 30 minutes" in text(first)
    assert "about 29 minutes" in text(third)


@pytest.mark.parametrize(
    ("language", "seconds", "wording"),
    [
        ("fr", 30, "Retour prévu sous peu."),
        ("de", 30, "Voraussichtlich in Kürze wieder erreichbar."),
        ("es", 30, "Volveremos en breve."),
        ("fr", 3590, "Retour prévu dans environ 1 heure."),
        ("de", 3590, "Voraussichtlich wieder erreichbar in etwa 1 Stunde."),
        ("es", 3590, "Volveremos en aproximadamente 1 hora."),
    ],
)
@override_settings(TEMPLATES=BUILTIN_ONLY)
def test_remaining_time_translated(clock: list[datetime], language: str, seconds: int, wording: str) -> None:
    down_until(clock[0] + timedelta(seconds=seconds))
    html = text(Client().get("/", headers={"Accept-Language": language}))
    assert wording in html


# --- read-only -------------------------------------------------------------------------------------


@pytest.mark.parametrize("templates", ["builtin", "demo"])
def test_readonly_refusal_says_read_only(templates: str) -> None:
    set_switch(readonly_switch_name(1), True)
    with pages(templates):
        response = Client().post("/submit/")
    html = text(response)
    assert response.status_code == 503
    assert "<title>Read-only for maintenance" in html
    assert "<h1>This site is read-only for now</h1>" in html
    assert "This site is in read-only mode for maintenance: changes cannot be saved right now." in html
    assert "You can still browse and read pages; saving changes is paused." in html
    assert "Changes can be saved again in about 1 hour." in html
    assert "back soon" not in html
    assert "Expected back" not in html
    assert "Down for maintenance" not in html


def test_readonly_refusal_with_a_planned_end(clock: list[datetime]) -> None:
    set_switch(readonly_switch_name(1), True, ends_at=clock[0] + timedelta(seconds=10), message="Moving servers")
    with override_settings(TEMPLATES=BUILTIN_ONLY):
        html = text(Client().post("/submit/"))
    assert "Moving servers" in html
    assert "This site is read-only for now" in html
    assert "Changes can be saved again shortly." in html


@pytest.mark.parametrize(
    ("language", "heading", "reading"),
    [
        ("fr", "Ce site est en lecture seule pour le moment", "Vous pouvez toujours consulter les pages"),
        ("de", "Diese Website ist vorübergehend schreibgeschützt", "Sie können weiterhin Seiten aufrufen und lesen"),
        ("es", "Este sitio está en modo de solo lectura por ahora", "Puede seguir navegando y leyendo las páginas"),
    ],
)
def test_readonly_refusal_translated(language: str, heading: str, reading: str) -> None:
    set_switch(readonly_switch_name(1), True)
    with override_settings(TEMPLATES=BUILTIN_ONLY):
        html = text(Client().post("/submit/", headers={"Accept-Language": language}))
    assert heading in html
    assert reading in html
    with translation.override(language):
        assert translation.gettext("We’ll be back soon") not in html


def test_maintenance_page_is_not_the_readonly_page() -> None:
    turn(True)
    set_switch(readonly_switch_name(1), True)
    with override_settings(TEMPLATES=BUILTIN_ONLY):
        html = text(Client().post("/submit/"))
    assert "We’ll be back soon" in html
    assert "read-only" not in html


def test_a_project_override_of_the_builtin_template_is_not_memoised() -> None:
    turn(True)
    with override_settings(TEMPLATES=django_templates(locmem({"maintenance_flags/503.html": "{{ request.path }}"}))):
        assert Client().get("/one/").content == b"/one/"
        assert Client().get("/two/").content == b"/two/"


def test_accept_is_case_insensitive() -> None:
    from maintenance_flags.responses import prefers_json

    assert prefers_json(RequestFactory().get("/", headers={"Accept": "APPLICATION/JSON"}))


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


@pytest.mark.parametrize("rounds", [1, 3])
def test_accept_decision_follows_each_header_however_often_asked(rounds: int) -> None:
    """The decision is memoised per header: asked again, or for another header, it still answers right."""

    def asks_json(accept: str) -> bool:
        return prefers_json(RequestFactory().get("/", headers={"Accept": accept}))

    for _ in range(rounds):
        assert asks_json("application/json")
        assert not asks_json("text/html")
        assert asks_json("application/problem+json, text/html;q=0.5")
        assert not asks_json("text/html, application/json;q=0.1")


@override_settings(TEMPLATES=BUILTIN_ONLY)
def test_page_memo_is_bounded(monkeypatch: pytest.MonkeyPatch, renders: list[str]) -> None:
    """Past MEMO_SIZE pages the memo starts over (the page is rendered again), and keeps memoising."""
    from maintenance_flags import responses

    monkeypatch.setattr(responses, "MEMO_SIZE", 1)
    turn(True)
    english = Client().get("/").content
    Client().get("/", headers={"Accept-Language": "fr"})  # a second page: the memo starts over
    assert renders.count("maintenance_flags/503.html") == 2
    assert Client().get("/").content == english  # rendered again: it was forgotten
    assert renders.count("maintenance_flags/503.html") == 3
    assert Client().get("/").content == english  # and kept
    assert renders.count("maintenance_flags/503.html") == 3
