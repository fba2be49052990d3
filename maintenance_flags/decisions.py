"""The one place that decides who gets through: for a request, whether it is served or gets
the maintenance response, and for the banner, whether it was let through as someone privileged.

Both the sync and the async middleware paths (and ``@force_maintenance``) call :func:`decide`
or :func:`adecide`, which differ only in how they load the user: :func:`evaluate` decides
without I/O, cheapest check first — path, IP, bypass token, the view (URL name,
``@maintenance_exempt``) — and only then, if it must, asks for the user, which may cost a query.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from django.core.signals import setting_changed
from django.http import HttpRequest
from django.urls import Resolver404, resolve

from maintenance_flags import bypass, exemptions, redirects
from maintenance_flags.conf import conf
from maintenance_flags.names import REASON_SITE
from maintenance_flags.responses import plan_for
from maintenance_flags.snapshot import Snapshot
from maintenance_flags.state import SiteState, overrides, state_for_request, state_for_site_id
from maintenance_flags.store import store
from maintenance_flags.users import aload_user, load_user

LET_THROUGH_IGNORED = "ignored"
LET_THROUGH_IP = "ip"
LET_THROUGH_BYPASS = "bypass"
LET_THROUGH_VIEW = "view"
LET_THROUGH_STAFF = "staff"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
EXEMPT_ATTR = "maintenance_exempt"
REQUEST_ATTR = "maintenance_flags"
SEEN_PATHS = 1024
IGNORED = "ignored"
HEALTH = "health"


@dataclass(frozen=True)
class Verdict:
    """What the middleware decided; stored on the request (``REQUEST_ATTR``) for the banner and
    the context processor."""

    state: SiteState
    blocked: bool
    let_through: str | None = None
    needs_user: bool = False

    @property
    def in_maintenance(self) -> bool:
        return self.state.active

    @property
    def writes_only(self) -> bool:
        """The site is read-only (not in maintenance): only unsafe requests are refused."""
        return self.state.blocks_writes_only

    def with_user(self, user: Any) -> Verdict:
        """Finish a verdict that was waiting on the user (staff bypass)."""
        if exemptions.is_staff_user(user):
            return verdict(self.state, blocked=False, let_through=LET_THROUGH_STAFF)
        return verdict(self.state, blocked=self.blocked)


def verdict(state: SiteState, blocked: bool, let_through: str | None = None, needs_user: bool = False) -> Verdict:
    """A verdict, shared by every request that gets the same one while the state lasts."""
    key = (blocked, let_through, needs_user)
    shared = state.derived.verdicts.get(key)
    if shared is None:
        shared = state.derived.verdicts[key] = Verdict(state, blocked, let_through, needs_user)
    return shared


@dataclass(frozen=True)
class PreparedExemptions:
    """What a site's exemptions come to under the current settings, prepared once per snapshot."""

    paths: exemptions.Matcher
    health: exemptions.Matcher
    allowed: tuple[exemptions.IPNetwork, ...]
    proxies: tuple[exemptions.IPNetwork, ...]
    url_names: tuple[str, ...]
    # Path -> IGNORED, HEALTH or None, for the paths seen while this snapshot lasts (bounded):
    # cheaper than RE2.
    seen: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    def client_allowed(self, request: HttpRequest) -> bool:
        """The client IP is in ``INTERNAL_IPS`` or ``MAINTENANCE_ALLOWED_IPS`` (through trusted proxies)."""
        return exemptions.client_allowed(request.META, self.allowed, self.proxies)

    def path_ignored(self, path_info: str, writes_only: bool) -> bool:
        """The path is an ignored URL; or a health-check path, unless only writes are refused
        (read-only mode): health checks read, so they are exempt for safe methods only."""
        try:
            kind = self.seen[path_info]
        except KeyError:
            if len(self.seen) >= SEEN_PATHS:
                self.seen.clear()
            kind = self.seen[path_info] = self._kind(path_info)
        return kind is IGNORED or (kind is HEALTH and not writes_only)

    def _kind(self, path_info: str) -> str | None:
        if exemptions.matches(self.paths, path_info):
            return IGNORED
        return HEALTH if exemptions.matches(self.health, path_info) else None


def exemptions_for(snapshot: Snapshot, site_id: int | None) -> PreparedExemptions:
    key = (site_id, conf.generation)  # settings may change under one snapshot (tests)
    prepared = snapshot.derived.exemptions.get(key)
    if prepared is None:
        patterns = (*conf.MAINTENANCE_ADMIN_IGNORED_URLS, *snapshot.ignored_for(site_id))
        prepared = snapshot.derived.exemptions[key] = PreparedExemptions(
            paths=exemptions.combined_matcher(tuple(patterns)),
            health=exemptions.combined_matcher(tuple(conf.MAINTENANCE_HEALTH_CHECK_URLS)),
            allowed=exemptions.networks([*conf.INTERNAL_IPS, *conf.MAINTENANCE_ALLOWED_IPS]),
            proxies=exemptions.networks(conf.MAINTENANCE_TRUSTED_PROXIES),
            url_names=tuple(conf.MAINTENANCE_IGNORED_URL_NAMES),
        )
    return prepared


def evaluate(request: HttpRequest, snapshot: Snapshot, force: bool = False) -> Verdict:
    """Decide without touching the database; ``force`` puts the site in maintenance for this view."""
    if snapshot.quiet and not force and not overrides:
        return _open_verdict(snapshot, request)
    state = state_for_request(snapshot, request)
    if force and not state.active:
        state = replace(state, active=True, reason=REASON_SITE, readonly=False)
    if not state.active and not (state.blocks_writes_only and request.method not in SAFE_METHODS):
        return verdict(state, blocked=False)
    prepared = exemptions_for(snapshot, state.site_id)
    if prepared.path_ignored(request.path_info, writes_only=not state.active) or _redirect_target(request, state):
        return verdict(state, blocked=False, let_through=LET_THROUGH_IGNORED)
    if prepared.client_allowed(request):
        return verdict(state, blocked=False, let_through=LET_THROUGH_IP)
    if bypass.request_has_bypass(request, snapshot, state.site_id):
        return verdict(state, blocked=False, let_through=LET_THROUGH_BYPASS)
    if not force and view_exempt(request, prepared.url_names):
        return verdict(state, blocked=False, let_through=LET_THROUGH_VIEW)
    return verdict(state, blocked=True, needs_user=not conf.MAINTENANCE_BLOCK_STAFF)


def _redirect_target(request: HttpRequest, state: SiteState) -> bool:
    """The request is for the redirect target's own page on this host: never redirected (no loop)."""
    url = plan_for(state).redirect  # per site over the setting, worked out once per state
    return url is not None and redirects.path_on_this_host(url, request) == request.path


def _open_verdict(snapshot: Snapshot, request: HttpRequest) -> Verdict:
    """Nothing is on anywhere (the usual case): one shared verdict per site and snapshot, found
    by ``SITE_ID`` when it is set (the site is then the same for every request), else by host."""
    site_id = conf.SITE_ID
    if site_id is not None:
        key: tuple[bool, int | None] = (True, site_id)
    else:
        host_site = snapshot.site_for(request)
        key = (False, host_site.pk if host_site is not None else None)
    shared = snapshot.derived.open_verdicts.get(key)
    if shared is None:  # once per snapshot and site
        site = snapshot.site_for(request)
        shared = Verdict(state_for_site_id(snapshot, site.pk if site is not None else site_id, site), blocked=False)
        snapshot.derived.open_verdicts[key] = shared
    return shared


def view_exempt(request: HttpRequest, ignored_names: tuple[str, ...]) -> bool:
    """The view is ``@maintenance_exempt`` or its URL name is in ``ignored_names``
    (``MAINTENANCE_IGNORED_URL_NAMES``)."""
    return _view_exempt(getattr(request, "urlconf", None), request.path_info, ignored_names)


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


# --- with the user, and for the banner ---------------------------------------------------------


def decide(request: HttpRequest, snapshot: Snapshot, force: bool = False) -> Verdict:
    """:func:`evaluate`, loading the user only if the decision waits on it."""
    decided = evaluate(request, snapshot, force)
    return decided.with_user(load_user(request)) if decided.needs_user else decided


async def adecide(request: HttpRequest, snapshot: Snapshot, force: bool = False) -> Verdict:
    decided = evaluate(request, snapshot, force)
    return decided.with_user(await aload_user(request)) if decided.needs_user else decided


def request_verdict(request: HttpRequest) -> Verdict | None:
    """The verdict the middleware stored on this request, if it ran."""
    stored = getattr(request, REQUEST_ATTR, None)
    return stored if isinstance(stored, Verdict) else None


def verdict_for(request: HttpRequest) -> Verdict:
    """The middleware's verdict for this request, or the same decision made now."""
    stored = request_verdict(request)
    if stored is None:
        stored = decide(request, store.get())  # no middleware ran (sync template rendering)
    return stored


def privileged(request: HttpRequest, decided: Verdict) -> bool:
    """Let through as staff, an allowed IP or a bypass holder — not merely by the URL.

    The middleware stops at the first exemption (the path, checked first), so a staff member on
    an ignored URL such as the admin is told here, for the banner's wording.
    """
    if decided.let_through in (LET_THROUGH_STAFF, LET_THROUGH_IP, LET_THROUGH_BYPASS):
        return True
    snapshot = store.peek()
    if exemptions_for(snapshot, decided.state.site_id).client_allowed(request):
        return True
    if bypass.request_has_bypass(request, snapshot, decided.state.site_id):
        return True
    return not conf.MAINTENANCE_BLOCK_STAFF and exemptions.is_staff_user(load_user(request))
