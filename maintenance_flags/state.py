"""Is a site in maintenance? The effective state of a site, computed from a snapshot.

Time-based state (windows, planned ends) is computed per request from the snapshot, so a window
opens and closes on time with no cron job; the answer is kept in the snapshot's cache until the
next moment it can change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from django.http import HttpRequest
from django.utils import timezone

from maintenance_flags.conf import MAX_RETRY_AFTER, conf
from maintenance_flags.names import (
    ALL_SITES_SWITCH,
    READONLY_ALL_SITES_SWITCH,
    REASON_GLOBAL,
    REASON_OFF,
    REASON_READONLY,
    REASON_SITE,
    REASON_UNKNOWN,
    REASON_WINDOW,
    readonly_switch_name,
    site_switch_name,
)
from maintenance_flags.snapshot import Detail, Snapshot, Window

if TYPE_CHECKING:
    from django.contrib.sites.models import Site

    from maintenance_flags.decisions import Verdict
    from maintenance_flags.responses import ResponsePlan


@dataclass
class StateDerived:
    """What is computed from one site state and kept as long as it: the verdicts shared by every
    request that gets the same one (filled by :mod:`~maintenance_flags.decisions`), and response
    bodies (filled by :mod:`~maintenance_flags.responses`)."""

    #: (blocked, let through by, waiting on the user) -> the shared verdict
    verdicts: dict[tuple[bool, str | None, bool], Verdict] = field(default_factory=dict)
    #: (JSON?, language, wait shown, settings generation) -> (content, Content-Type)
    bodies: dict[tuple[bool, str | None, int | None, object], tuple[bytes, str]] = field(default_factory=dict)
    #: the response plan for the current settings (filled by :mod:`~maintenance_flags.responses`)
    plan: ResponsePlan | None = None


@dataclass(frozen=True)
class SiteState:
    """The effective state of one site (or of "no site": only what applies to all sites)."""

    active: bool
    reason: str
    site: Site | None = None
    site_id: int | None = None
    known: bool = True
    readonly: bool = False
    ends_at: datetime | None = None
    message: str = ""
    #: per-site peer-parity options (``on --redirect/--refresh``); the settings apply when empty
    redirect_url: str = ""
    refresh: int | None = None
    derived: StateDerived = field(default_factory=StateDerived, compare=False, repr=False)

    @property
    def blocks_writes_only(self) -> bool:
        return self.readonly and not self.active

    @property
    def retry_after(self) -> int:
        """Seconds until the latest known end of what keeps the site down, else the setting; at most
        ``MAX_RETRY_AFTER`` (a year), so that an end at the end of time stays a number a page can show."""
        if self.ends_at is None:
            return conf.MAINTENANCE_RETRY_AFTER
        return min(max(0, math.ceil((self.ends_at - timezone.now()).total_seconds())), MAX_RETRY_AFTER)


# Test overrides (maintenance_flags.testutils): key None = every site.
overrides: dict[int | None, bool] = {}


def _latest(ends: list[datetime | None]) -> datetime | None:
    known = [end for end in ends if end is not None]
    return max(known) if known else None


def state_for_site_id(snapshot: Snapshot, site_id: int | None, site: Site | None = None) -> SiteState:
    """The site's state now, from the snapshot alone.

    The answer is memoised in the snapshot until the next moment it can change (a planned end,
    a window opening or closing): a busy site in maintenance computes it once per
    ``MAINTENANCE_STATE_TTL``, not on every request.
    """
    if overrides and (site_id in overrides or None in overrides):
        on = overrides.get(site_id, overrides.get(None, False))
        return SiteState(on, REASON_SITE if on else REASON_OFF, site, site_id)
    if not snapshot.known:
        closed = conf.MAINTENANCE_FAIL_MODE != "open"
        return SiteState(closed, REASON_UNKNOWN, site, site_id, known=False)
    if snapshot.quiet:  # no clock, no switch lookups
        return SiteState(False, REASON_OFF, site, site_id)
    key = (site_id, site.pk if site is not None else None)
    hit = snapshot.derived.states.get(key)
    if hit is not None and (hit[1] is None or timezone.now() < hit[1]):
        return hit[0]
    now = timezone.now()
    state = _state_at(snapshot, site_id, site, now)
    snapshot.derived.states[key] = (state, _next_change(snapshot, site_id, now))
    return state


def _switch_names(site_id: int | None) -> tuple[str, ...]:
    if site_id is None:
        return (ALL_SITES_SWITCH, READONLY_ALL_SITES_SWITCH)
    return (site_switch_name(site_id), ALL_SITES_SWITCH, readonly_switch_name(site_id), READONLY_ALL_SITES_SWITCH)


def _next_change(snapshot: Snapshot, site_id: int | None, now: datetime) -> datetime | None:
    """The first moment after ``now`` at which the site's state may change, if any is known."""
    moments: list[datetime | None] = [
        detail.ends_at for name in _switch_names(site_id) if (detail := snapshot.details.get(name)) is not None
    ]
    for window in snapshot.windows:
        if window.applies_to(site_id):
            moments += [window.starts_at, window.ends_at]
    future = [moment for moment in moments if moment is not None and moment > now]
    return min(future) if future else None


def _state_at(snapshot: Snapshot, site_id: int | None, site: Site | None, now: datetime) -> SiteState:
    causes: list[tuple[str, Detail]] = []
    if site_id is not None and (detail := snapshot.switch_on(site_switch_name(site_id), now)):
        causes.append((REASON_SITE, detail))
    if detail := snapshot.switch_on(ALL_SITES_SWITCH, now):
        causes.append((REASON_GLOBAL, detail))
    for window in snapshot.windows:
        if window.applies_to(site_id) and window.is_open(now):
            causes.append((REASON_WINDOW, Detail(window.message, window.ends_at)))
    readonly: list[Detail] = []
    if site_id is not None and (detail := snapshot.switch_on(readonly_switch_name(site_id), now)):
        readonly.append(detail)
    if detail := snapshot.switch_on(READONLY_ALL_SITES_SWITCH, now):
        readonly.append(detail)
    if causes:
        details = [d for _, d in causes]
        reason = causes[0][0]
    elif readonly:
        details, reason = readonly, REASON_READONLY
    else:
        return SiteState(False, REASON_OFF, site, site_id)
    message = next((d.message for d in details if d.message), "")
    return SiteState(
        redirect_url=next((d.redirect_url for d in details if d.redirect_url), ""),
        refresh=next((d.refresh for d in details if d.refresh), None),
        active=bool(causes),
        reason=reason,
        site=site,
        site_id=site_id,
        readonly=bool(readonly),
        ends_at=_latest([d.ends_at for d in details]),
        message=message,
    )


def state_for_request(snapshot: Snapshot, request: HttpRequest) -> SiteState:
    site = snapshot.site_for(request)
    site_id = site.pk if site is not None else conf.SITE_ID
    return state_for_site_id(snapshot, site_id, site)


def upcoming_windows(snapshot: Snapshot, site_id: int | None, now: datetime, horizon: float) -> list[Window]:
    """Windows for this site that open within ``horizon`` seconds, soonest first."""
    return sorted(
        (
            w
            for w in snapshot.windows
            if w.applies_to(site_id) and now < w.starts_at and (w.starts_at - now).total_seconds() <= horizon
        ),
        key=lambda w: w.starts_at,
    )
