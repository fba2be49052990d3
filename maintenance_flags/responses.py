"""The maintenance response: an HTML page or RFC 9457 problem details, with its headers."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.loader import get_template, select_template
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext

from maintenance_flags.conf import conf
from maintenance_flags.state import SiteState

logger = logging.getLogger("maintenance_flags")

BUILTIN_TEMPLATE = "maintenance_flags/503.html"
JSON_TYPES = ("application/json", "application/problem+json")


def default_message() -> str:
    return gettext("This site is down for maintenance. Please try again later.")


def prefers_json(request: HttpRequest) -> bool:
    """True when the client prefers JSON to HTML (``Accept`` with q-values; ties go to HTML)."""
    if "application/" not in request.headers.get("Accept", ""):  # cheap: no JSON type can match
        return False
    html = request.accepted_type("text/html")
    html_q = html.quality if html is not None else 0.0
    json_q = max((t.quality for t in map(request.accepted_type, JSON_TYPES) if t is not None), default=0.0)
    return json_q > html_q


def template_names() -> list[str]:
    configured = conf.MAINTENANCE_503_TEMPLATE
    return [configured] if configured else ["503.html", BUILTIN_TEMPLATE]


def render_page(request: HttpRequest, context: dict[str, Any]) -> str:
    """Render the 503 page; a broken project template falls back to the built-in one."""
    try:
        return str(select_template(template_names()).render(context, request))
    except Exception:
        logger.warning("Could not render the maintenance page; using the built-in one", exc_info=True)
        return str(get_template(BUILTIN_TEMPLATE).render(context))


def readonly_message() -> str:
    return gettext("This site is in read-only mode for maintenance: changes cannot be saved right now.")


def message_for(state: SiteState) -> str:
    if state.message:
        return state.message
    return readonly_message() if state.blocks_writes_only else default_message()


def maintenance_response(request: HttpRequest, state: SiteState) -> HttpResponse:
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
        response = HttpResponse(render_page(request, context), status=503)
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    response["X-Maintenance-Mode"] = "on"
    patch_vary_headers(response, ("Accept",))
    # Django's log_response() skips responses already logged: no ERROR line, no admin mail.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
