"""The snapshot: everything a request needs to decide, read from the database in one go.

The state lives in waffle ``Switch`` rows, Sites, ignored URLs, windows, switch details and
bypass tokens. :func:`load_snapshot` reads all of it straight from the database (never through
waffle's cache, which may be a per-process local-memory cache); :mod:`maintenance_flags.store`
keeps the last one per process for ``MAINTENANCE_STATE_TTL``. A snapshot never changes once
read: what is derived from it (per-site states, prepared exemptions, verdicts) is kept in its
:class:`Derived` cache, which lives and dies with it.

Models are imported inside :func:`load_snapshot`: this module is imported by the middleware,
and the app must import cleanly without ``django.contrib.sites`` (check E002 says so instead).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import DisallowedHost
from django.db import DatabaseError
from django.http import HttpRequest
from django.http.request import split_domain_port
from django.utils import timezone

from maintenance_flags import redirects
from maintenance_flags.conf import conf
from maintenance_flags.exemptions import PatternError, WholeSitePattern, check_pattern
from maintenance_flags.names import our_switches, switch_model
from maintenance_flags.schema import database_answers

if TYPE_CHECKING:
    from django.contrib.sites.models import Site

    from maintenance_flags.decisions import PreparedExemptions, Verdict
    from maintenance_flags.state import SiteState

logger = logging.getLogger("maintenance_flags")


@dataclass
class Derived:
    """What is computed from one snapshot on first use and kept as long as it (at most a TTL).

    Each cache is filled by one module: ``ignored`` here, ``states`` by
    :mod:`~maintenance_flags.state`, ``exemptions`` and ``open_verdicts`` by
    :mod:`~maintenance_flags.decisions`.
    """

    #: site id -> the ignored-URL patterns of that site and of every site
    ignored: dict[int | None, tuple[str, ...]] = field(default_factory=dict)
    #: (site id, Site pk) -> (the state, the first moment after which it may change, if any)
    states: dict[tuple[int | None, int | None], tuple[SiteState, datetime | None]] = field(default_factory=dict)
    #: (site id, settings generation) -> the exemptions prepared for that site
    exemptions: dict[tuple[int | None, object], PreparedExemptions] = field(default_factory=dict)
    #: (found by SITE_ID?, site id or Site pk) -> the verdict shared while nothing is on
    open_verdicts: dict[tuple[bool, int | None], Verdict] = field(default_factory=dict)


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
    redirect_url: str = ""
    refresh: int | None = None


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
    derived: Derived = field(default_factory=Derived, compare=False, repr=False)

    def site_for(self, request: HttpRequest) -> Site | None:
        """``Site.objects.get_current(request)``, answered from memory."""
        site_id = conf.SITE_ID
        if site_id is not None:
            return self.sites_by_id.get(site_id)
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
        cache = self.derived.ignored
        if site_id not in cache:  # once per snapshot and site, not on every blocked request
            cache[site_id] = tuple(p for owner, p in self.ignored if owner is None or owner == site_id)
        return cache[site_id]

    def __reduce__(self) -> tuple[Callable[..., Snapshot], tuple[Any, ...]]:
        """Pickled for the fleet tier's shared copy: what was read, not what was derived from it,
        and each Site as its field values (so a copy is readable by a process on another Django
        version during a rolling deploy)."""
        sites = tuple(_site_row(site) for site in self.sites_by_id.values())
        fields = (self.switches, self.ignored, self.windows, self.details, self.bypass_tokens, self.known)
        return _unpickle, (sites, *fields)

    def switch_on(self, name: str, now: datetime) -> Detail | None:
        """The switch's detail if it is on now (a planned end in the past turns it off)."""
        if not self.switches.get(name, False):
            return None
        detail = self.details.get(name) or Detail()
        if detail.ends_at is not None and detail.ends_at <= now:
            return None
        return detail


UNKNOWN = Snapshot(known=False)

_SiteRow = tuple[str | None, dict[str, Any]]  # (the database it was read from, field values)


def _site_row(site: Site) -> _SiteRow:
    return site._state.db, {f.attname: getattr(site, f.attname) for f in site._meta.concrete_fields}


def _unpickle(
    sites: tuple[_SiteRow, ...],
    switches: dict[str, bool],
    ignored: tuple[tuple[int | None, str], ...],
    windows: tuple[Window, ...],
    details: dict[str, Detail],
    bypass_tokens: dict[int, tuple[str, int | None]],
    known: bool,
) -> Snapshot:
    from django.contrib.sites.models import Site

    names = [f.attname for f in Site._meta.concrete_fields]
    rebuilt = [Site.from_db(db, names, [row[name] for name in names]) for db, row in sites]
    return Snapshot(
        switches=switches,
        sites_by_id={site.pk: site for site in rebuilt},
        sites_by_domain={site.domain.lower(): site for site in rebuilt},
        ignored=ignored,
        windows=windows,
        details=details,
        bypass_tokens=bypass_tokens,
        known=known,
    )


def load_snapshot() -> Snapshot:
    """Read the state from the database: a handful of small queries.

    A part whose table (or column) does not exist yet while the database answers — the app
    installed but not migrated, or a new version deployed before ``migrate`` — reads as empty
    (a missing switch means off), with one WARNING per process that names ``migrate``. A
    database that cannot be reached raises, for the caller's ``MAINTENANCE_FAIL_MODE``.
    """
    from django.contrib.sites.models import Site

    from maintenance_flags.models import BypassToken, IgnoredURL, MaintenanceWindow, SwitchDetail

    logger.debug("Reading the maintenance state from the database")
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
        lambda: {
            d.switch_name: Detail(d.message, d.ends_at, _redirect_url(d.redirect_url), d.refresh)
            for d in SwitchDetail.objects.all()
        },
        {},
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


def _redirect_url(url: str) -> str:
    """A stored redirect target, or "" if it is not one (saved past validation): never a 500."""
    if url and not redirects.is_valid(url):
        _warn_once(("redirect", url), "Ignoring the redirect target %r: not a path or an http(s) URL", url)
        return ""
    return url


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
