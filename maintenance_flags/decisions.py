"""The one place that decides, for a request, whether it is served or gets the 503.

Both the sync and the async middleware paths (and ``@force_maintenance``) call
:func:`evaluate` and :meth:`Verdict.with_user`; they differ only in how they load the
snapshot and the user. The checks run cheapest first: path, IP, bypass token, the view
(URL name, ``@maintenance_exempt``) and only then the user, which may cost a query.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from django.http import HttpRequest
from django.urls import Resolver404, resolve

from maintenance_flags import bypass, exemptions
from maintenance_flags.conf import conf
from maintenance_flags.names import REASON_SITE
from maintenance_flags.state import SiteState, Snapshot, overrides, state_for_request, state_for_site_id

if TYPE_CHECKING:
    from django.contrib.sites.models import Site

LET_THROUGH_IGNORED = "ignored"
LET_THROUGH_IP = "ip"
LET_THROUGH_BYPASS = "bypass"
LET_THROUGH_VIEW = "view"
LET_THROUGH_STAFF = "staff"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
EXEMPT_ATTR = "maintenance_exempt"


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

    @property
    def readonly(self) -> bool:
        return self.state.blocks_writes_only

    def with_user(self, user: Any) -> Verdict:
        """Finish a verdict that was waiting on the user (staff bypass)."""
        if exemptions.is_staff_user(user):
            return replace(self, blocked=False, let_through=LET_THROUGH_STAFF, needs_user=False)
        return replace(self, needs_user=False)


def evaluate(request: HttpRequest, snapshot: Snapshot, force: bool = False) -> Verdict:
    """Decide without touching the database; ``force`` puts the site in maintenance for this view."""
    if snapshot.quiet and not force and not overrides:
        return _open_verdict(snapshot, snapshot.site_for(request))
    state = state_for_request(snapshot, request)
    if force and not state.active:
        state = replace(state, active=True, reason=REASON_SITE, readonly=False)
    if not state.active and not (state.blocks_writes_only and request.method not in SAFE_METHODS):
        return Verdict(state, blocked=False)
    patterns = (
        *conf.MAINTENANCE_ADMIN_IGNORED_URLS,
        *conf.MAINTENANCE_HEALTH_CHECK_URLS,
        *snapshot.ignored_for(state.site_id),
    )
    if exemptions.path_matches(request.path_info, patterns):
        return Verdict(state, blocked=False, let_through=LET_THROUGH_IGNORED)
    if ip_allowed(request):
        return Verdict(state, blocked=False, let_through=LET_THROUGH_IP)
    if bypass.request_has_bypass(request, snapshot):
        return Verdict(state, blocked=False, let_through=LET_THROUGH_BYPASS)
    if not force and view_exempt(request):
        return Verdict(state, blocked=False, let_through=LET_THROUGH_VIEW)
    return Verdict(state, blocked=True, needs_user=not conf.MAINTENANCE_BLOCK_STAFF)


def _open_verdict(snapshot: Snapshot, site: Site | None) -> Verdict:
    """Nothing is on anywhere (the usual case): one shared verdict per site and snapshot."""
    key = ("open", site.pk if site is not None else None)
    verdict = snapshot.memo.get(key)
    if verdict is None:
        site_id = site.pk if site is not None else conf.SITE_ID
        verdict = snapshot.memo[key] = Verdict(state_for_site_id(snapshot, site_id, site), blocked=False)
    return verdict


def ip_allowed(request: HttpRequest) -> bool:
    allowed = exemptions.networks([*conf.INTERNAL_IPS, *conf.MAINTENANCE_ALLOWED_IPS])
    if not allowed:
        return False
    address = exemptions.client_ip(request.META, exemptions.networks(conf.MAINTENANCE_TRUSTED_PROXIES))
    return address is not None and exemptions.in_networks(address, allowed)


def view_exempt(request: HttpRequest) -> bool:
    """The view is ``@maintenance_exempt`` or its URL name is in ``MAINTENANCE_IGNORED_URL_NAMES``."""
    names = tuple(conf.MAINTENANCE_IGNORED_URL_NAMES)
    return _view_exempt(getattr(request, "urlconf", None), request.path_info, names)


@lru_cache(maxsize=1024)
def _view_exempt(urlconf: Any, path_info: str, ignored_names: tuple[str, ...]) -> bool:
    """Memoised per path (bounded): resolving costs more than the rest of the decision."""
    try:
        match = resolve(path_info, urlconf=urlconf)
    except Resolver404:
        return False
    if getattr(match.func, EXEMPT_ATTR, False):
        return True
    return url_name_ignored(match.url_name, match.namespaces, ignored_names)


def _forget_views(**kwargs: Any) -> None:
    _view_exempt.cache_clear()  # ROOT_URLCONF or other settings changed (override_settings)


setting_changed.connect(_forget_views, dispatch_uid="maintenance_flags.decisions.forget_views")


def url_name_ignored(url_name: str | None, namespaces: list[str], ignored: Any) -> bool:
    """A plain name matches a URL without namespace; ``ns:name`` and ``ns:*`` namespaced ones."""
    if not url_name or not ignored:
        return False
    namespace = ":".join(namespaces)
    full = f"{namespace}:{url_name}" if namespace else url_name
    return full in ignored or (bool(namespace) and f"{namespace}:*" in ignored)
