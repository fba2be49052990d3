"""Template context: ``maintenance_mode`` is True while the request's site is in maintenance."""

from __future__ import annotations

from django.http import HttpRequest

from maintenance_flags.decisions import Verdict, evaluate
from maintenance_flags.middleware import load_user, request_verdict
from maintenance_flags.state import store


def verdict_for(request: HttpRequest) -> Verdict:
    """The middleware's verdict for this request, or the same decision made now."""
    verdict = request_verdict(request)
    if verdict is None:
        verdict = evaluate(request, store.get())
        if verdict.needs_user:
            verdict = verdict.with_user(load_user(request))
    return verdict


def maintenance(request: HttpRequest) -> dict[str, bool]:
    return {"maintenance_mode": verdict_for(request).in_maintenance}
