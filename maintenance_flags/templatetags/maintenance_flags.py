"""``{% maintenance_banner %}``: a banner for people let through while the site is in maintenance,
for everyone while it is read-only, and for everyone before a scheduled window."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone

from maintenance_flags.conf import conf
from maintenance_flags.decisions import privileged, verdict_for
from maintenance_flags.state import upcoming_windows
from maintenance_flags.store import store

register = template.Library()

BANNER_TEMPLATE = "maintenance_flags/banner.html"


def banner_context(request: HttpRequest) -> dict[str, Any] | None:
    """What the banner says for this request, or None when there is nothing to say."""
    verdict = verdict_for(request)
    state = verdict.state
    kind = None
    if verdict.in_maintenance and not verdict.blocked:
        kind = "staff" if privileged(request, verdict) else "visitor"
    elif verdict.writes_only:
        kind = "readonly"
    upcoming = []
    if not verdict.in_maintenance and state.known:
        # No I/O: the middleware refreshed the snapshot for this request (async views render here too).
        upcoming = upcoming_windows(store.peek(), state.site_id, timezone.now(), conf.MAINTENANCE_ANNOUNCE_BEFORE)
    if kind is None and not upcoming:
        return None
    return {"kind": kind, "verdict": verdict, "site": state.site, "message": state.message, "upcoming": upcoming}


def banner_html(request: HttpRequest | None) -> str:
    """The banner's HTML for this request, or "" when there is nothing to say."""
    if request is None:
        return ""
    context = banner_context(request)
    if context is None:
        return ""
    return render_to_string(BANNER_TEMPLATE, context, request=request)


@register.simple_tag(takes_context=True)
def maintenance_banner(context: dict[str, Any]) -> str:
    return banner_html(context.get("request"))
