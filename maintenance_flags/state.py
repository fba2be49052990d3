"""Is a site in maintenance? Switch names, memoised reads and writes.

The state lives in waffle ``Switch`` rows. Each process keeps a :class:`Snapshot`
of every maintenance switch, every Site and every ignored pattern, read straight
from the database (never through waffle's cache, which may be a per-process
local-memory cache) and refreshed at most once per ``MAINTENANCE_STATE_TTL``.
A request at steady state therefore costs no query, and a change made anywhere
is seen everywhere within the TTL.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.request import split_domain_port

from maintenance_flags.conf import conf
from maintenance_flags.exemptions import Matcher, PatternError, compile_pattern

if TYPE_CHECKING:
    from django.contrib.sites.models import Site
    from waffle.models import AbstractBaseSwitch

logger = logging.getLogger("maintenance_flags")

SWITCH_PREFIX = "maintenance_mode_"
SITE_SWITCH_PREFIX = "maintenance_mode_site_"
ALL_SITES_SWITCH = "maintenance_mode_all_sites"

REASON_SITE = "site switch"
REASON_GLOBAL = "global switch"
REASON_OFF = "off"
REASON_UNKNOWN = "state unavailable"


def site_switch_name(site_id: int) -> str:
    return f"{SITE_SWITCH_PREFIX}{site_id}"


def switch_model() -> type[AbstractBaseSwitch]:
    from waffle import get_waffle_switch_model

    return get_waffle_switch_model()


@dataclass(frozen=True)
class Snapshot:
    """Everything a request needs to decide, read in one go."""

    switches: dict[str, bool] = field(default_factory=dict)
    sites_by_id: dict[int, Site] = field(default_factory=dict)
    sites_by_domain: dict[str, Site] = field(default_factory=dict)
    ignored: tuple[tuple[int | None, Matcher], ...] = ()
    known: bool = True

    def site_for(self, request: HttpRequest) -> Site | None:
        """``Site.objects.get_current(request)``, answered from memory."""
        if conf.SITE_ID is not None:
            return self.sites_by_id.get(conf.SITE_ID)
        try:
            host = request.get_host().lower()
        except DisallowedHost:
            return None
        site = self.sites_by_domain.get(host)
        if site is None:
            domain, port = split_domain_port(host)
            if port:
                site = self.sites_by_domain.get(domain)
        return site

    def ignored_for(self, site_id: int | None) -> list[Matcher]:
        return [m for owner, m in self.ignored if owner is None or owner == site_id]


UNKNOWN = Snapshot(known=False)


@dataclass(frozen=True)
class SiteState:
    """The maintenance state of one site (or of "no site": the global switch only)."""

    active: bool
    reason: str
    site: Site | None = None
    site_id: int | None = None
    known: bool = True

    @property
    def retry_after(self) -> int:
        return conf.MAINTENANCE_RETRY_AFTER


def state_for_site_id(snapshot: Snapshot, site_id: int | None, site: Site | None = None) -> SiteState:
    if not snapshot.known:
        closed = conf.MAINTENANCE_FAIL_MODE != "open"
        return SiteState(closed, REASON_UNKNOWN, site, site_id, known=False)
    if site_id is not None and snapshot.switches.get(site_switch_name(site_id), False):
        return SiteState(True, REASON_SITE, site, site_id)
    if snapshot.switches.get(ALL_SITES_SWITCH, False):
        return SiteState(True, REASON_GLOBAL, site, site_id)
    return SiteState(False, REASON_OFF, site, site_id)


def state_for_request(snapshot: Snapshot, request: HttpRequest) -> SiteState:
    site = snapshot.site_for(request)
    site_id = site.pk if site is not None else conf.SITE_ID
    return state_for_site_id(snapshot, site_id, site)


# --- the per-process memo ----------------------------------------------------------------------


def load_snapshot() -> Snapshot:
    """Read the state from the database: three small queries."""
    from django.contrib.sites.models import Site

    from maintenance_flags.models import IgnoredURL

    switches = dict(switch_model().objects.filter(name__startswith=SWITCH_PREFIX).values_list("name", "active"))
    sites = list(Site.objects.all())
    ignored = []
    for row_id, site_id, pattern in IgnoredURL.objects.values_list("pk", "site_id", "pattern"):
        try:
            ignored.append((site_id, compile_pattern(pattern)))
        except PatternError as exc:
            _warn_once(
                ("pattern", row_id, pattern),
                "Skipping IgnoredURL %s: pattern %r does not compile (%s)",
                row_id,
                pattern,
                exc,
            )
    return Snapshot(
        switches=switches,
        sites_by_id={site.pk: site for site in sites},
        sites_by_domain={site.domain.lower(): site for site in sites},
        ignored=tuple(ignored),
    )


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
        try:
            snapshot = load_snapshot()
        except Exception:  # any failure: database down, table missing, cache error...
            logger.warning(
                "Could not read the maintenance state; using %s",
                "the last known state" if self._snapshot is not None else "MAINTENANCE_FAIL_MODE",
                exc_info=True,
            )
            snapshot = self._snapshot if self._snapshot is not None else UNKNOWN
        else:
            if self._snapshot is not None and not self._snapshot.known:
                logger.warning("The maintenance state can be read again")
        self._snapshot = snapshot
        self._fetched_at = time.monotonic()
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


# --- writes --------------------------------------------------------------------------------------


def set_switch(name: str, active: bool) -> tuple[AbstractBaseSwitch, bool]:
    """Turn a switch on or off with ``save()``, creating it if missing.

    Returns the switch and whether it changed. Saves one object at a time so that
    waffle's cache invalidation and our signal receivers run.
    """
    model = switch_model()
    switch = model.objects.filter(name=name).first()
    was_active = bool(switch is not None and switch.active)
    if switch is None:
        switch = model(name=name, note=switch_note(name))
    changed = was_active != active
    if changed or switch.pk is None:
        switch.active = active
        switch.save()
    return switch, changed


def switch_note(name: str) -> str:
    if name == ALL_SITES_SWITCH:
        return "maintenance_flags: maintenance mode for every site (global override)."
    site_id = name.removeprefix(SITE_SWITCH_PREFIX)
    return f"maintenance_flags: maintenance mode for site {site_id}."


def ensure_switches(site_ids: list[int], using: str = "default") -> int:
    """Create the missing (inactive) switches for these sites and the global one."""
    model = switch_model()
    names = [ALL_SITES_SWITCH, *(site_switch_name(i) for i in site_ids)]
    existing = set(model.objects.using(using).filter(name__in=names).values_list("name", flat=True))
    created = 0
    for name in names:
        if name not in existing:
            model(name=name, active=False, note=switch_note(name)).save(using=using)
            created += 1
    return created
