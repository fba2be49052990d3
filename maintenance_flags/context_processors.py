"""Template context: ``maintenance_mode`` is True while the request's site is in maintenance."""

from __future__ import annotations

from django.http import HttpRequest

from maintenance_flags import bypass, exemptions
from maintenance_flags.conf import conf
from maintenance_flags.decisions import (
    LET_THROUGH_BYPASS,
    LET_THROUGH_IP,
    LET_THROUGH_STAFF,
    Verdict,
    exemptions_for,
)
from maintenance_flags.middleware import decide, load_user, request_verdict
from maintenance_flags.state import store


def verdict_for(request: HttpRequest) -> Verdict:
    """The middleware's verdict for this request, or the same decision made now."""
    verdict = request_verdict(request)
    if verdict is None:
        verdict = decide(request, store.get())  # no middleware ran (sync template rendering)
    return verdict


def privileged(request: HttpRequest, verdict: Verdict) -> bool:
    """Let through as staff, an allowed IP or a bypass holder — not merely by the URL.

    The middleware stops at the first exemption (the path, checked first), so a staff member on
    an ignored URL such as the admin is told here, for the banner's wording.
    """
    if verdict.let_through in (LET_THROUGH_STAFF, LET_THROUGH_IP, LET_THROUGH_BYPASS):
        return True
    snapshot = store.peek()
    allowed_ip = exemptions_for(snapshot, verdict.state.site_id).client_allowed(request)
    if allowed_ip or bypass.request_has_bypass(request, snapshot, verdict.state.site_id):
        return True
    return not conf.MAINTENANCE_BLOCK_STAFF and exemptions.is_staff_user(load_user(request))


def maintenance(request: HttpRequest) -> dict[str, bool]:
    return {"maintenance_mode": verdict_for(request).in_maintenance}
