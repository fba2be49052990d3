"""The maintenance response: an HTML page or RFC 9457 problem details, with its headers.

The 503 path is hot while a busy site is down, so two things are memoised: the JSON-or-HTML
decision per ``Accept`` value, and — when the page comes from the built-in template, which uses
nothing from the request — the rendered page, for ``MAINTENANCE_STATE_TTL`` seconds per
language, site and message. A project's own template is rendered on every request.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse
from django.template.loader import get_template, select_template
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext

from maintenance_flags.conf import conf
from maintenance_flags.state import SiteState

logger = logging.getLogger("maintenance_flags")

BUILTIN_TEMPLATE = "maintenance_flags/503.html"
BUILTIN_PATH = str(Path(__file__).resolve().parent / "templates" / BUILTIN_TEMPLATE)
JSON_TYPES = ("application/json", "application/problem+json")


def default_message() -> str:
    return _default_message(translation.get_language())


@lru_cache(maxsize=64)
def _default_message(language: str | None) -> str:
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


def render_page(request: HttpRequest, context: dict[str, Any]) -> str:
    """Render the 503 page; a broken project template falls back to the built-in one."""
    key = page_key(context)
    page = cached_page(key)
    if page is not None:
        return page
    try:
        page = str(select_template(template_names()).render(context, request))
    except Exception:
        logger.warning("Could not render the maintenance page; using the built-in one", exc_info=True)
        return str(get_template(BUILTIN_TEMPLATE).render(context))
    if key is not None:
        if len(_pages) >= PAGE_CACHE_SIZE:
            _pages.clear()
        _pages[key] = (time.monotonic(), page)
    return page


# --- the rendered-page memo (built-in template only) ---------------------------------------------

PAGE_CACHE_SIZE = 256
_pages: dict[tuple[Any, ...], tuple[float, str]] = {}
_builtin_in_use: dict[tuple[str, ...], bool] = {}


def uses_builtin_template() -> bool:
    """Whether the page comes from the built-in template (no project ``503.html`` or setting)."""
    names = tuple(template_names())
    if names not in _builtin_in_use:
        try:
            origin = getattr(select_template(list(names)), "origin", None)
        except Exception:
            origin = None
        # The app's own file, not a project's override of the same name (which may use the request).
        name = getattr(origin, "name", None)
        _builtin_in_use[names] = isinstance(name, str) and str(Path(name).resolve()) == BUILTIN_PATH
    return _builtin_in_use[names]


def page_key(context: dict[str, Any]) -> tuple[Any, ...] | None:
    """What the built-in page depends on, or None when the page must be rendered each time."""
    if conf.MAINTENANCE_STATE_TTL <= 0 or not uses_builtin_template():
        return None
    site = context["site"]
    return (
        translation.get_language(),
        (site.pk, site.name) if site is not None else None,
        context["message"],
        context["retry_after"] // 60,  # the page says "in about N minutes"
    )


def page_key_if_known(context: dict[str, Any]) -> tuple[Any, ...] | None:
    """``page_key`` without looking up templates (None until the first render said)."""
    if tuple(template_names()) not in _builtin_in_use:
        return None
    return page_key(context)


def cached_page(key: tuple[Any, ...] | None) -> str | None:
    """The memoised page if it is younger than the TTL (no I/O: safe in async code)."""
    hit = _pages.get(key) if key is not None else None
    if hit is not None and time.monotonic() - hit[0] < conf.MAINTENANCE_STATE_TTL:
        return hit[1]
    return None


def forget_pages(**kwargs: Any) -> None:
    """Templates or settings changed (``override_settings``): render again."""
    _pages.clear()
    _builtin_in_use.clear()
    _default_message.cache_clear()


setting_changed.connect(forget_pages, dispatch_uid="maintenance_flags.responses.forget_pages")


def readonly_message() -> str:
    return gettext("This site is in read-only mode for maintenance: changes cannot be saved right now.")


def message_for(state: SiteState) -> str:
    if state.message:
        return state.message
    return readonly_message() if state.blocks_writes_only else default_message()


def maintenance_response(request: HttpRequest, state: SiteState) -> HttpResponse:
    """The maintenance response: 503, JSON or HTML, with its headers."""
    response = _build(request, state, render=True)
    assert response is not None
    return response


def cached_maintenance_response(request: HttpRequest, state: SiteState) -> HttpResponse | None:
    """The maintenance response if it needs no rendering (JSON, a memoised page), else None.

    Nothing here touches the database or the template loaders: safe to call from async code.
    """
    return _build(request, state, render=False)


async def amaintenance_response(request: HttpRequest, state: SiteState) -> HttpResponse:
    """For async code: no thread hop unless the page has to be rendered (which may query)."""
    return cached_maintenance_response(request, state) or await sync_to_async(maintenance_response)(request, state)


def _build(request: HttpRequest, state: SiteState, render: bool) -> HttpResponse | None:
    message = message_for(state)
    retry_after = state.retry_after
    if prefers_json(request):
        body = {
            "type": "about:blank",
            "title": gettext("Service Unavailable"),
            "status": 503,
            "detail": message,
        }
        response = HttpResponse(json.dumps(body), content_type="application/problem+json", status=503)
    else:
        context = {
            "site": state.site,
            "message": message,
            "retry_after": retry_after,
            "retry_at": timezone.now() + timedelta(seconds=retry_after),
            "ends_at": state.ends_at,
            "readonly": state.blocks_writes_only,
        }
        page = render_page(request, context) if render else cached_page(page_key_if_known(context))
        if page is None:
            return None
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    response["X-Maintenance-Mode"] = "on"
    patch_vary_headers(response, ("Accept",))
    # Django's log_response() skips responses already logged: no ERROR line, no admin mail.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
