"""The one place that decides, for a request, whether it is served or gets the 503.

Both the sync and the async middleware paths call :func:`evaluate` and
:meth:`Verdict.with_user`; they differ only in how they load the snapshot and the user.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.http import HttpRequest

from maintenance_flags import exemptions
from maintenance_flags.conf import conf
from maintenance_flags.state import SiteState, Snapshot, state_for_request

LET_THROUGH_IGNORED = "ignored"
LET_THROUGH_IP = "ip"
LET_THROUGH_STAFF = "staff"


@dataclass(frozen=True)
class Verdict:
    """What the middleware decided; stored on the request for the banner and context processor."""

    state: SiteState
    blocked: bool
    let_through: str | None = None
    needs_user: bool = False

    @property
    def in_maintenance(self) -> bool:
        return self.state.active

    def with_user(self, user: Any) -> Verdict:
        """Finish a verdict that was waiting on the user (staff bypass)."""
        if exemptions.is_staff_user(user):
            return replace(self, blocked=False, let_through=LET_THROUGH_STAFF, needs_user=False)
        return replace(self, needs_user=False)


def evaluate(request: HttpRequest, snapshot: Snapshot) -> Verdict:
    """Decide without touching the database: path and IP first, the user last."""
    state = state_for_request(snapshot, request)
    if not state.active:
        return Verdict(state, blocked=False)
    matchers = [
        *exemptions.settings_matchers(conf.MAINTENANCE_ADMIN_IGNORED_URLS),
        *snapshot.ignored_for(state.site_id),
    ]
    if exemptions.matches_any(request.path_info, matchers):
        return Verdict(state, blocked=False, let_through=LET_THROUGH_IGNORED)
    if ip_allowed(request):
        return Verdict(state, blocked=False, let_through=LET_THROUGH_IP)
    return Verdict(state, blocked=True, needs_user=not conf.MAINTENANCE_BLOCK_STAFF)


def ip_allowed(request: HttpRequest) -> bool:
    allowed = exemptions.networks([*conf.INTERNAL_IPS, *conf.MAINTENANCE_ALLOWED_IPS])
    if not allowed:
        return False
    address = exemptions.client_ip(request.META, exemptions.networks(conf.MAINTENANCE_TRUSTED_PROXIES))
    return address is not None and exemptions.in_networks(address, allowed)
