"""``{% maintenance_banner %}``: a banner for people let through while the site is in maintenance."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest
from django.template.loader import render_to_string

from maintenance_flags.context_processors import verdict_for
from maintenance_flags.decisions import LET_THROUGH_IGNORED

register = template.Library()

BANNER_TEMPLATE = "maintenance_flags/banner.html"


def banner_html(request: HttpRequest | None) -> str:
    """The banner's HTML for this request, or "" when there is nothing to say."""
    if request is None:
        return ""
    verdict = verdict_for(request)
    if not verdict.in_maintenance or verdict.blocked:
        return ""
    context = {
        "verdict": verdict,
        "site": verdict.state.site,
        "visitor_view": verdict.let_through == LET_THROUGH_IGNORED,
    }
    return render_to_string(BANNER_TEMPLATE, context, request=request)


@register.simple_tag(takes_context=True)
def maintenance_banner(context: dict[str, Any]) -> str:
    return banner_html(context.get("request"))
