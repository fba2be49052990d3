"""Is a site in maintenance? Switch names, the memoised snapshot, the effective state.

The state lives in waffle ``Switch`` rows (plus windows and switch details). Each
process keeps a :class:`Snapshot` of all of it, read straight from the database
(never through waffle's cache, which may be a per-process local-memory cache) and
refreshed at most once per ``MAINTENANCE_STATE_TTL``. A request at steady state
therefore costs no query, and a change made anywhere is seen everywhere within the TTL.
Time-based state (windows, planned ends) is computed per request from the snapshot,
so a window opens and closes on time with no cron job.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import DisallowedHost
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import HttpRequest
from django.http.request import split_domain_port
from django.utils import timezone

from maintenance_flags.conf import MAX_RETRY_AFTER, conf
from maintenance_flags.exemptions import PatternError, WholeSitePattern, check_pattern
from maintenance_flags.names import (
    ALL_SITES_SWITCH,
    READONLY_ALL_SITES_SWITCH,
    REASON_GLOBAL,
    REASON_OFF,
    REASON_READONLY,
    REASON_SITE,
    REASON_UNKNOWN,
    REASON_WINDOW,
    SITE_SWITCH_PREFIX,
    SWITCH_PREFIX,
    our_switches,
    readonly_switch_name,
    site_switch_name,
    switch_model,
)

if TYPE_CHECKING:
    from django.contrib.sites.models import Site

logger = logging.getLogger("maintenance_flags")


@dataclass(frozen=True)
class Window:
    pk: int
    site_id: int | None
    starts_at: datetime
    ends_at: datetime | None
    message: str
    opened: bool = False

    def is_open(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)

    def applies_to(self, site_id: int | None) -> bool:
        return self.site_id is None or self.site_id == site_id


@dataclass(frozen=True)
class Detail:
    message: str = ""
    ends_at: datetime | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything a request needs to decide, read in one go."""

    switches: dict[str, bool] = field(default_factory=dict)
    sites_by_id: dict[int, Site] = field(default_factory=dict)
    sites_by_domain: dict[str, Site] = field(default_factory=dict)
    ignored: tuple[tuple[int | None, str], ...] = ()  # (site id or None, pattern that compiles)
    windows: tuple[Window, ...] = ()
    details: dict[str, Detail] = field(default_factory=dict)
    bypass_tokens: dict[int, tuple[str, int | None]] = field(default_factory=dict)  # live id -> (secret, site id)
    known: bool = True
    # Per-snapshot memo for derived values (e.g. the verdict for an open site); not compared.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def site_for(self, request: HttpRequest) -> Site | None:
        """``Site.objects.get_current(request)``, answered from memory."""
        if conf.SITE_ID is not None:
            return self.sites_by_id.get(conf.SITE_ID)
        try:
            host = request.get_host()
        except DisallowedHost:
            return None
        # As get_current(): the host as given (any case), then without its port and trailing dot.
        site = self.sites_by_domain.get(host.lower())
        if site is None:
            domain, _port = split_domain_port(host)
            site = self.sites_by_domain.get(domain)
        return site

    @cached_property
    def quiet(self) -> bool:
        """The state is known, nothing is on and no window exists: every site is simply open."""
        return self.known and not self.windows and not any(self.switches.values())

    def ignored_for(self, site_id: int | None) -> tuple[str, ...]:
        key = ("ignored", site_id)
        if key not in self.memo:  # once per snapshot and site, not on every blocked request
            self.memo[key] = tuple(p for owner, p in self.ignored if owner is None or owner == site_id)
        patterns: tuple[str, ...] = self.memo[key]
        return patterns

    def switch_on(self, name: str, now: datetime) -> Detail | None:
        """The switch's detail if it is on now (a planned end in the past turns it off)."""
        if not self.switches.get(name, False):
            return None
        detail = self.details.get(name) or Detail()
        if detail.ends_at is not None and detail.ends_at <= now:
            return None
        return detail


UNKNOWN = Snapshot(known=False)


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
    # Per-state memo for what is derived from it (the maintenance response); not compared.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

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
    key = ("state", site_id, site.pk if site is not None else None)
    hit: tuple[SiteState, datetime | None] | None = snapshot.memo.get(key)
    if hit is not None and (hit[1] is None or timezone.now() < hit[1]):
        return hit[0]
    now = timezone.now()
    state = _state_at(snapshot, site_id, site, now)
    snapshot.memo[key] = (state, _next_change(snapshot, site_id, now))
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


# --- the per-process memo ----------------------------------------------------------------------


def load_snapshot() -> Snapshot:
    """Read the state from the database: a handful of small queries.

    A part whose table (or column) does not exist yet while the database answers — the app
    installed but not migrated, or a new version deployed before ``migrate`` — reads as empty
    (a missing switch means off), with one WARNING per process that names ``migrate``. A
    database that cannot be reached raises, for the caller's ``MAINTENANCE_FAIL_MODE``.
    """
    from django.contrib.sites.models import Site

    from maintenance_flags.models import BypassToken, IgnoredURL, MaintenanceWindow, SwitchDetail

    now = timezone.now()
    switch_rows = switch_model().objects.filter(our_switches()).values_list("name", "active")
    switches: dict[str, bool] = _part(lambda: dict(switch_rows), {})
    sites: list[Site] = _part(lambda: list(Site.objects.all()), [])
    pattern_rows = IgnoredURL.objects.values_list("pk", "site_id", "pattern")
    rows: list[tuple[int, int | None, str]] = _part(lambda: list(pattern_rows), [])
    open_windows = MaintenanceWindow.objects.filter(closed_at__isnull=True)
    windows: tuple[Window, ...] = _part(
        lambda: tuple(
            Window(w.pk, w.site_id, w.starts_at, w.ends_at, w.message, w.opened_at is not None) for w in open_windows
        ),
        (),
    )
    details: dict[str, Detail] = _part(
        lambda: {d.switch_name: Detail(d.message, d.ends_at) for d in SwitchDetail.objects.all()}, {}
    )

    def read_tokens() -> dict[int, tuple[str, int | None]]:
        live = BypassToken.objects.filter(revoked=False, expires_at__gt=now)
        tokens: dict[int, tuple[str, int | None]] = {
            pk: (secret, site_id) for pk, secret, site_id in live.values_list("pk", "secret", "site_id")
        }
        return tokens

    return Snapshot(
        switches=switches,
        sites_by_id={site.pk: site for site in sites},
        sites_by_domain={site.domain.lower(): site for site in sites},
        ignored=_usable_patterns(rows),
        windows=windows,
        details=details,
        bypass_tokens=_part(read_tokens, {}),
    )


_T = TypeVar("_T")


def _part(read: Callable[[], _T], missing: _T) -> _T:
    """One part of the snapshot; ``missing`` if its table is not there yet (see :func:`load_snapshot`)."""
    try:
        return read()
    except DatabaseError:
        if not database_answers():
            raise
    _warn_once(
        ("migrate",),
        "maintenance_flags: a table or column it needs does not exist yet: run `manage.py migrate`. "
        "Until then, what it cannot read counts as off.",
    )
    return missing


def database_answers(using: str = DEFAULT_DB_ALIAS) -> bool:
    """The database can be queried (so a failed query means a missing table, not an outage)."""
    try:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


def _usable_patterns(rows: list[tuple[int, int | None, str]]) -> tuple[tuple[int | None, str], ...]:
    """Ignored-URL rows whose pattern can be used; the others are skipped and logged once."""
    ignored = []
    for row_id, site_id, pattern in rows:
        try:
            check_pattern(pattern)
        except WholeSitePattern:
            _warn_once(
                ("pattern", row_id, pattern),
                "Skipping IgnoredURL %s: pattern %r matches every path (it would exempt the whole site)",
                row_id,
                pattern,
            )
        except PatternError as exc:
            _warn_once(
                ("pattern", row_id, pattern),
                "Skipping IgnoredURL %s: pattern %r does not compile (%s)",
                row_id,
                pattern,
                exc,
            )
        else:
            ignored.append((site_id, pattern))
    return tuple(ignored)


_warned: set[tuple[Any, ...]] = set()


def _warn_once(key: tuple[Any, ...], message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


class StateStore:
    """The process-wide memo of the last snapshot, refreshed at most once per TTL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._fetched_at = float("-inf")

    def fresh(self) -> Snapshot | None:
        """The memoised snapshot if it is younger than the TTL, else None (no I/O)."""
        if self._snapshot is not None and time.monotonic() - self._fetched_at < conf.MAINTENANCE_STATE_TTL:
            return self._snapshot
        return None

    def without_io(self) -> Snapshot | None:
        """A snapshot usable now with no I/O: the fresh one, or the last one while another thread
        refreshes it (what async code takes before hopping to a thread to read the database)."""
        fresh = self.fresh()
        if fresh is not None:
            return fresh
        return self._snapshot if self._lock.locked() else None

    def peek(self) -> Snapshot:
        """The last snapshot whatever its age, or UNKNOWN: for templates rendered after the middleware."""
        return self._snapshot if self._snapshot is not None else UNKNOWN

    def get(self) -> Snapshot:
        """The current snapshot, reading the database if the memo is older than the TTL."""
        snapshot = self.fresh()
        if snapshot is not None:
            return snapshot
        if not self._lock.acquire(blocking=self._snapshot is None):
            return self._snapshot or UNKNOWN  # another thread is refreshing: use the last one
        try:
            return self.fresh() or self._refresh()
        finally:
            self._lock.release()

    def _refresh(self) -> Snapshot:
        started = time.monotonic()  # the data is as old as the moment the read began
        try:
            snapshot = load_snapshot()
        except Exception:  # any failure: database down, table missing, ...
            logger.warning(
                "Could not read the maintenance state; using %s",
                "the last known state" if self._snapshot is not None else "MAINTENANCE_FAIL_MODE",
                exc_info=True,
            )
            snapshot = self._snapshot if self._snapshot is not None else UNKNOWN
            started = time.monotonic()  # retry at most once per TTL after a failed read
        else:
            if self._snapshot is not None and not self._snapshot.known:
                logger.warning("The maintenance state can be read again")
            from maintenance_flags.schedule import run_transitions

            run_transitions(snapshot)
        self._snapshot = snapshot
        self._fetched_at = started
        return snapshot

    def invalidate(self) -> None:
        """Forget the memo: the next request reads the database (used after local writes)."""
        self._fetched_at = float("-inf")

    def reset(self) -> None:
        """Forget everything, including the last known state (for tests)."""
        with self._lock:
            self._snapshot = None
            self._fetched_at = float("-inf")


store = StateStore()


# The writers live in maintenance_flags.switches; re-exported for convenience.
from maintenance_flags.switches import ensure_switches, set_switch  # noqa: E402

__all__ = [
    "ALL_SITES_SWITCH",
    "READONLY_ALL_SITES_SWITCH",
    "REASON_GLOBAL",
    "REASON_OFF",
    "REASON_READONLY",
    "REASON_SITE",
    "REASON_UNKNOWN",
    "REASON_WINDOW",
    "SITE_SWITCH_PREFIX",
    "SWITCH_PREFIX",
    "UNKNOWN",
    "SiteState",
    "Snapshot",
    "ensure_switches",
    "load_snapshot",
    "readonly_switch_name",
    "set_switch",
    "site_switch_name",
    "state_for_request",
    "state_for_site_id",
    "store",
    "switch_model",
]
