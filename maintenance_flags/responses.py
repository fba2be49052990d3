"""The maintenance response: an HTML page or RFC 9457 problem details, with its headers.

The 503 path is hot while a busy site is down, so it does as little as it can per request:

- the JSON-or-HTML decision is memoised per ``Accept`` value;
- response bodies are kept on the site's state (which lives as long as the snapshot, at most
  ``MAINTENANCE_STATE_TTL`` seconds, or until the state changes), one per language, kind and
  wording of the remaining time ("about 30 minutes"): JSON always, and the HTML page when it cannot depend on the
  request — the built-in template, or a project template declared so with
  ``MAINTENANCE_503_PRERENDER = True``. Otherwise a project's own template is rendered with the
  request on every request, as the contract says (its context processors run).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import get_template, select_template
from django.utils import timesince, timezone, translation
from django.utils.functional import lazy
from django.utils.translation import gettext

from maintenance_flags.conf import DEFAULT_STATUS_CODE, conf
from maintenance_flags.state import SiteState
from maintenance_flags.users import asign_out, sign_out

logger = logging.getLogger("maintenance_flags")

BUILTIN_TEMPLATE = "maintenance_flags/503.html"
BUILTIN_PATH = str(Path(__file__).resolve().parent / "templates" / BUILTIN_TEMPLATE)
JSON_TYPES = ("application/json", "application/problem+json")


def default_message() -> str:
    return gettext("This site is down for maintenance. Please try again later.")


def prefers_json(request: HttpRequest) -> bool:
    """True when the client prefers JSON to HTML (``Accept`` with q-values; ties go to HTML)."""
    accept = request.META.get("HTTP_ACCEPT", "").lower()  # request.headers would parse every header
    if "application/" not in accept:  # cheap: no JSON type can match
        return False
    return _accept_prefers_json(accept)


@lru_cache(maxsize=256)
def _accept_prefers_json(accept: str) -> bool:
    """Memoised per ``Accept`` value: clients send a handful, and parsing one is not free."""
    request = HttpRequest()
    request.META["HTTP_ACCEPT"] = accept
    html = request.accepted_type("text/html")
    html_q = html.quality if html is not None else 0.0
    json_q = max((t.quality for t in map(request.accepted_type, JSON_TYPES) if t is not None), default=0.0)
    return json_q > html_q


def template_names() -> list[str]:
    configured = conf.MAINTENANCE_503_TEMPLATE
    return [configured] if configured else ["503.html", BUILTIN_TEMPLATE]


def render_page(request: HttpRequest, context: dict[str, Any]) -> tuple[str, bool]:
    """Render the 503 page, and say whether this rendering may serve every visitor: the built-in
    template, or a project's with ``MAINTENANCE_503_PRERENDER``. A broken project template falls
    back to the built-in page (logged), rendered again each time until the template is fixed."""
    try:
        template = select_template(template_names())
        page = str(template.render(context, request))
    except Exception:
        logger.warning("Could not render the maintenance page; using the built-in one", exc_info=True)
        return str(get_template(BUILTIN_TEMPLATE).render(context)), False
    return page, conf.MAINTENANCE_503_PRERENDER or is_builtin(template)


def is_builtin(template: Any) -> bool:
    """The app's own file, not a project's override of the same name (which may use the request)."""
    name = getattr(getattr(template, "origin", None), "name", None)
    return isinstance(name, str) and _is_builtin_file(name)


@lru_cache(maxsize=16)
def _is_builtin_file(name: str) -> bool:
    return str(Path(name).resolve()) == BUILTIN_PATH


def readonly_message() -> str:
    return gettext("This site is in read-only mode for maintenance: changes cannot be saved right now.")


def message_for(state: SiteState) -> str:
    if state.message:
        return state.message
    return readonly_message() if state.blocks_writes_only else default_message()


@dataclass(frozen=True)
class ResponsePlan:
    """What a state's maintenance response is besides its body, under the current settings: worked
    out once per state and settings (``SiteState.derived.plan``), so a blocked request reads no
    setting for it."""

    redirect: str | None
    refresh: int | None
    status: int
    logout: bool
    generation: object


def plan_for(state: SiteState) -> ResponsePlan:
    """The redirect target and refresh (per site over the settings), status code and sign-out."""
    generation = conf.generation
    plan = state.derived.plan
    if plan is None or plan.generation is not generation:
        plan = state.derived.plan = ResponsePlan(
            redirect=state.redirect_url or conf.MAINTENANCE_REDIRECT_URL,
            refresh=state.refresh or conf.MAINTENANCE_REFRESH,
            status=conf.MAINTENANCE_STATUS_CODE,
            logout=conf.MAINTENANCE_LOGOUT_USERS,
            generation=generation,
        )
    return plan


def maintenance_response(request: HttpRequest, state: SiteState) -> HttpResponse:
    """The maintenance response: 503 (or ``MAINTENANCE_STATUS_CODE``), JSON or HTML, with its
    headers; or the redirect, for a browser's GET or HEAD when one is set. With
    ``MAINTENANCE_LOGOUT_USERS``, a signed-in user served it is signed out."""
    plan = plan_for(state)
    response = _redirect(request, plan) or _rendered(request, state, plan)
    if plan.logout:
        sign_out(request)
    return response


def _rendered(request: HttpRequest, state: SiteState, plan: ResponsePlan) -> HttpResponse:
    response = _build(request, state, plan, render=True)
    assert response is not None
    return response


def cached_maintenance_response(request: HttpRequest, state: SiteState) -> HttpResponse | None:
    """The maintenance response if it needs no rendering (JSON, a page already made), else None.

    Nothing here touches the database or the template loaders: safe to call from async code.
    """
    return _build(request, state, plan_for(state), render=False)


async def amaintenance_response(request: HttpRequest, state: SiteState) -> HttpResponse:
    """For async code: no thread hop unless the page has to be rendered (which may query)."""
    plan = plan_for(state)
    response = (
        _redirect(request, plan)
        or cached_maintenance_response(request, state)
        or await sync_to_async(_rendered)(request, state, plan)
    )
    if plan.logout:
        await asign_out(request)
    return response


def _redirect(request: HttpRequest, plan: ResponsePlan) -> HttpResponse | None:
    """A 302 to the site's (or the setting's) redirect target, for a browser's GET or HEAD only:
    JSON clients and unsafe methods keep the maintenance response."""
    if plan.redirect is None or request.method not in ("GET", "HEAD") or prefers_json(request):
        return None
    response = HttpResponseRedirect(plan.redirect)
    response["Cache-Control"] = "no-store"
    response["X-Maintenance-Mode"] = "on"
    response["Vary"] = "Accept"
    return response


# Bodies kept per state (SiteState.derived.bodies), at most this many.
MEMO_SIZE = 64

MINUTE, HOUR, DAY = 60, 3600, 86400


def rounded_wait(seconds: int) -> int:
    """The wait the page shows: 0 under a minute ("shortly"), else to the nearest minute, or to the
    nearest hour from a day on. Never "0 minutes", and an hour less a few seconds is "1 hour"."""
    if seconds < MINUTE:
        return 0
    unit = HOUR if seconds >= DAY else MINUTE
    return (seconds + unit // 2) // unit * unit


def wait_text(seconds: int) -> str:
    """``rounded_wait(seconds)`` in words, in the active language ("1 hour, 30 minutes"), or "" under
    a minute. ``seconds`` is at most a year (``SiteState.retry_after``), so the dates cannot overflow."""
    wait = rounded_wait(seconds)
    if not wait:
        return ""
    now = timezone.now()
    return timesince.timeuntil(now + timedelta(seconds=wait), now, depth=2)


lazy_wait_text = lazy(wait_text, str)


def _build(request: HttpRequest, state: SiteState, plan: ResponsePlan, render: bool) -> HttpResponse | None:
    as_json = prefers_json(request)
    retry_after = state.retry_after
    # The page says "in about N minutes": one body per wording, while Retry-After counts seconds.
    key = (as_json, translation.get_language(), None if as_json else rounded_wait(retry_after), plan.generation)
    bodies = state.derived.bodies
    body = bodies.get(key)
    if body is None:
        if as_json:
            body = (_problem(state), "application/problem+json")
        else:
            if not render:  # a page not made yet, or one made for each request
                return None
            page, reused = render_page(request, _context(state, plan, retry_after))
            body = (page.encode(), "text/html; charset=utf-8")
            if not reused:
                return _response(body, retry_after, plan)
        if len(bodies) >= MEMO_SIZE:
            bodies.clear()
        bodies[key] = body
    return _response(body, retry_after, plan)


def _problem(state: SiteState) -> bytes:
    """RFC 9457 problem details."""
    status = conf.MAINTENANCE_STATUS_CODE
    detail = {
        "type": "about:blank",
        "title": gettext("Service Unavailable") if status == DEFAULT_STATUS_CODE else _phrase(status),
        "status": status,
        "detail": message_for(state),
    }
    return json.dumps(detail).encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a code with no standard phrase (e.g. 599)
        return gettext("Down for maintenance")


def _context(state: SiteState, plan: ResponsePlan, retry_after: int) -> dict[str, Any]:
    return {
        "refresh": plan.refresh,
        "site": state.site,
        "message": message_for(state),
        "retry_after": retry_after,
        "retry_at": timezone.now() + timedelta(seconds=retry_after),
        "retry_in": lazy_wait_text(retry_after),  # worked out only if the page shows it
        "ends_at": state.ends_at,
        "readonly": state.blocks_writes_only,
    }


def _response(body: tuple[bytes, str], retry_after: int, plan: ResponsePlan) -> HttpResponse:
    content, content_type = body
    response = HttpResponse(
        content,
        status=plan.status,
        headers={
            "Content-Type": content_type,
            "Retry-After": str(retry_after),
            "Cache-Control": "no-store",
            "X-Maintenance-Mode": "on",
            "Vary": "Accept",
        },
    )
    if plan.refresh:
        response["Refresh"] = str(plan.refresh)
    # Django's log_response() skips responses already logged: no ERROR line, no admin mail.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
