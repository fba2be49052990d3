"""Time-based transitions, noticed when a process refreshes its snapshot.

The effective state is computed per request, so a window opens and closes on time
without this module. What this adds is the *record* of those moments: each window's
opening and closing, and each planned end (``setmaintenance on --for 30m``), is
claimed once across the whole fleet with a conditional UPDATE — the one process whose
UPDATE changes a row records the audit event and sends the signal. It costs queries
only when something is due.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from maintenance_flags.state import Snapshot, Window

logger = logging.getLogger("maintenance_flags")


def run_transitions(snapshot: Snapshot) -> None:
    now = timezone.now()
    due_windows = [w for w in snapshot.windows if w.starts_at <= now]
    due_ends = [
        name
        for name, detail in snapshot.details.items()
        if detail.ends_at is not None and detail.ends_at <= now and snapshot.switches.get(name)
    ]
    if not due_windows and not due_ends:
        return
    try:
        _close_windows(due_windows, now)
        _end_planned(due_ends, now)
    except Exception:
        logger.warning("Could not record scheduled maintenance transitions", exc_info=True)


def _close_windows(windows: list[Window], now: datetime) -> None:
    from maintenance_flags.audit import record_window
    from maintenance_flags.models import MaintenanceWindow

    rows = MaintenanceWindow.objects
    for window in windows:
        ended = window.ends_at is not None and window.ends_at <= now
        if not window.opened and rows.filter(pk=window.pk, opened_at__isnull=True).update(opened_at=now):
            record_window(window.pk, opened=True)
        if ended and rows.filter(pk=window.pk, closed_at__isnull=True).update(closed_at=now):
            record_window(window.pk, opened=False)


def _end_planned(names: list[str], now: datetime) -> None:
    from maintenance_flags.audit import acting
    from maintenance_flags.models import SwitchDetail
    from maintenance_flags.switches import set_switch

    for name in names:
        # Claim the planned end: only one process turns the switch off and records it.
        if SwitchDetail.objects.filter(switch_name=name, ends_at__lte=now).update(ends_at=None):
            with acting("schedule", reason="planned end reached"):
                set_switch(name, False)
