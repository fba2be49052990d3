"""Writes: turn switches on and off (with a message and a planned end), schedule windows.

Every switch is written one object at a time with ``save()``, so waffle's cache
invalidation, our audit trail and the ``maintenance_started``/``ended`` signals run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from maintenance_flags.audit import Acting, acting
from maintenance_flags.names import (
    ALL_SITES_SWITCH,
    READONLY_ALL_SITES_SWITCH,
    READONLY_PREFIX,
    site_id_of,
    site_switch_name,
    switch_model,
)

if TYPE_CHECKING:
    from waffle.models import AbstractBaseSwitch

    from maintenance_flags.models import MaintenanceWindow


def switch_note(name: str) -> str:
    if name == ALL_SITES_SWITCH:
        return "maintenance_flags: maintenance mode for every site (global override)."
    if name == READONLY_ALL_SITES_SWITCH:
        return "maintenance_flags: read-only mode for every site."
    kind = "read-only mode" if "readonly" in name else "maintenance mode"
    return f"maintenance_flags: {kind} for site {site_id_of(name)}."


logger = logging.getLogger("maintenance_flags")


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


def set_switch(
    name: str,
    active: bool,
    *,
    message: str | None = None,
    ends_at: datetime | _Keep | None = KEEP,
    redirect_url: str | None = None,
    refresh: int | None = None,
) -> tuple[AbstractBaseSwitch, bool]:
    """Turn a switch on or off, creating it if missing; returns it and whether it changed.

    Turning on records ``message``, ``redirect_url`` and ``refresh`` (None keeps the current one;
    ``""`` and ``0`` clear them) and the planned end ``ends_at`` (None: no planned end; ``KEEP``,
    the default, keeps the current one). Turning off clears them all.
    """
    written = write_switch(name, active, message=message, ends_at=ends_at, redirect_url=redirect_url, refresh=refresh)
    return written.switch, written.changed


@dataclass(frozen=True)
class Written:
    """What :func:`write_switch` did."""

    switch: AbstractBaseSwitch
    #: Turned on or off.
    changed: bool
    #: Left on with a new planned end or message: what changed, e.g. ``("message updated",)``.
    updated: tuple[str, ...] = ()


def write_switch(
    name: str,
    active: bool,
    *,
    message: str | None = None,
    ends_at: datetime | _Keep | None = KEEP,
    redirect_url: str | None = None,
    refresh: int | None = None,
    record_as: Acting | None = None,
) -> Written:
    """:func:`set_switch`, saying what changed on a switch that stays on.

    With ``record_as``, such a change (a new planned end or message) is also recorded in the
    history, as ``record_as`` (its user: a saved user or None), in the same transaction; it sends
    no signal, since maintenance neither starts nor ends.
    """
    from maintenance_flags.models import SwitchDetail

    committed = False
    updated: list[str] = []
    try:
        with transaction.atomic():
            model = switch_model()
            switch = model.objects.select_for_update().filter(name=name).first()
            was_active = bool(switch is not None and switch.active)
            if was_active and SwitchDetail.objects.filter(switch_name=name, ends_at__lte=timezone.now()).exists():
                # Its planned end has passed unnoticed: record that end first, as the schedule
                # would have, so the row, the audit trail and the signals agree.
                assert switch is not None
                SwitchDetail.objects.filter(switch_name=name).update(ends_at=None)
                with acting("schedule", reason="planned end reached"):
                    switch.active = False
                    switch.save()
                was_active = False
            if switch is None:
                switch = model(name=name, note=switch_note(name))
            if active:
                detail, _ = SwitchDetail.objects.get_or_create(switch_name=name)
                if not isinstance(ends_at, _Keep) and ends_at != detail.ends_at:
                    detail.ends_at = ends_at
                    updated.append(f"planned end now {ends_at.isoformat()}" if ends_at else "no planned end")
                if message is not None and message != detail.message:
                    detail.message = message
                    updated.append("message updated")
                if redirect_url is not None and redirect_url != detail.redirect_url:
                    detail.redirect_url = redirect_url
                    updated.append(f"redirect to {redirect_url}" if redirect_url else "no redirect")
                if refresh is not None and (refresh or None) != detail.refresh:
                    detail.refresh = refresh or None
                    updated.append(f"refresh every {refresh} s" if refresh else "no refresh")
                if updated:
                    detail.save()
            changed = was_active != active
            if changed or switch.pk is None:
                switch.active = active
                switch.save()
            if not active:
                SwitchDetail.objects.filter(switch_name=name).delete()
            if not was_active:
                updated = []  # turning on sets them: nothing was updated
            if updated and record_as is not None:
                _record_update(name, updated, record_as)
            committed = True
    except Exception as exc:
        # Raised by an on-commit callback after the change was committed: waffle flushes its
        # cache on commit, which fails while that cache (e.g. Redis) is down. The switch did
        # change, and our state reads never go through waffle's cache: report and go on.
        if not committed or isinstance(exc, DatabaseError):
            raise
        logger.warning("%s was saved, but a post-commit step failed (waffle's cache down?)", name, exc_info=True)
    assert switch is not None
    return Written(switch, changed, tuple(updated))


def _record_update(name: str, updated: list[str], actor: Acting) -> None:
    from maintenance_flags.models import MaintenanceEvent

    what = ", ".join(updated)
    MaintenanceEvent.objects.create(
        site_id=site_id_of(name),
        switch_name=name,
        active=True,
        previous=True,
        readonly=name.startswith(READONLY_PREFIX),
        source=actor.source,
        user=actor.user,
        reason=f"{actor.reason} ({what})" if actor.reason else what,
    )


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


def end_open_windows(site_id: int | None) -> int:
    """End the windows open now for this site (None: the all-sites windows). Returns how many."""
    from maintenance_flags.models import MaintenanceWindow

    now = timezone.now()
    scope = Q(site__isnull=True) if site_id is None else Q(site_id=site_id)
    open_now = MaintenanceWindow.objects.filter(scope, starts_at__lte=now).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now)
    )
    ended = 0
    for window in open_now:
        window.ends_at = now
        window.save(update_fields=["ends_at"])
        ended += 1
    return ended


def schedule_window(
    site_id: int | None, starts_at: datetime, ends_at: datetime | None, message: str = ""
) -> MaintenanceWindow:
    from maintenance_flags.models import MaintenanceWindow

    window = MaintenanceWindow(site_id=site_id, starts_at=starts_at, ends_at=ends_at, message=message)
    window.full_clean()
    window.save()
    return window
