"""Time-based transitions, recorded in the background after a refresh.

The effective state is computed per request, so a window opens and closes on time without
this module. What this adds is the *record* of those moments: each window's opening and
closing, and each planned end (``setmaintenance on --for 30m``), is claimed once across the
whole fleet with a conditional UPDATE — the one process whose UPDATE changes a row records the
audit event and sends the signal.

None of it runs in a visitor's request: :class:`Recorder` is handed each new snapshot by the
store (after its lock is released), looks without I/O for anything that fell due, and only
then records it in a thread of its own, one at a time per process. Anything it misses (the
process exits first, the database is down) stays unclaimed, so the next refresh anywhere
records it: exactly once, whichever process gets there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from django.db import connections
from django.utils import timezone

from maintenance_flags.audit import acting, record_window
from maintenance_flags.snapshot import Snapshot, Window
from maintenance_flags.switches import set_switch

logger = logging.getLogger("maintenance_flags")


def due(snapshot: Snapshot, now: datetime) -> tuple[list[Window], list[str]]:
    """Windows whose opening or closing is not recorded yet, and switches whose planned end passed."""
    windows = [
        w
        for w in snapshot.windows
        if w.starts_at <= now and (not w.opened or (w.ends_at is not None and w.ends_at <= now))
    ]
    ends = [
        name
        for name, detail in snapshot.details.items()
        if detail.ends_at is not None and detail.ends_at <= now and snapshot.switches.get(name)
    ]
    return windows, ends


def record_transitions(snapshot: Snapshot) -> bool:
    """Record what fell due (queries only then); True if this process recorded any of it.
    Failures are logged: the next refresh retries."""
    now = timezone.now()
    windows, ends = due(snapshot, now)
    if not windows and not ends:
        return False
    recorded = False
    try:
        recorded = _record_windows(windows, now)
        recorded = _end_planned(ends, now) or recorded
    except Exception:
        logger.warning("Could not record scheduled maintenance transitions", exc_info=True)
    return recorded


def _record_windows(windows: list[Window], now: datetime) -> bool:
    """Record each window's opening and, once its end has passed, its closing."""
    from maintenance_flags.models import MaintenanceWindow

    rows = MaintenanceWindow.objects
    recorded = False
    for window in windows:
        ended = window.ends_at is not None and window.ends_at <= now
        if not window.opened and rows.filter(pk=window.pk, opened_at__isnull=True).update(opened_at=now):
            record_window(window.pk, opened=True)
            recorded = True
        if ended and rows.filter(pk=window.pk, closed_at__isnull=True).update(closed_at=now):
            record_window(window.pk, opened=False)
            recorded = True
    return recorded


def _end_planned(names: list[str], now: datetime) -> bool:
    from maintenance_flags.models import SwitchDetail

    recorded = False
    for name in names:
        # Claim the planned end: only one process turns the switch off and records it.
        if SwitchDetail.objects.filter(switch_name=name, ends_at__lte=now).update(ends_at=None):
            with acting("schedule", reason="planned end reached"):
                set_switch(name, False)
            recorded = True
    return recorded


class Recorder:
    """Records due transitions in a background thread, at most one at a time per process."""

    def __init__(self) -> None:
        self._busy = threading.Lock()

    def submit(self, snapshot: Snapshot, then: Callable[[], None] | None = None) -> bool:
        """Start recording what fell due in ``snapshot``, if anything did and no recording runs
        (it will be seen again at the next refresh). No I/O in the caller's thread. ``then`` is
        called in the thread if it recorded anything (the store shares the change with the fleet)."""
        windows, ends = due(snapshot, timezone.now())
        if not (windows or ends) or not self._busy.acquire(blocking=False):
            return False
        thread = threading.Thread(
            target=self._run, args=(snapshot, then), name="maintenance_flags.recorder", daemon=True
        )
        thread.start()
        return True

    def _run(self, snapshot: Snapshot, then: Callable[[], None] | None) -> None:
        try:
            if record_transitions(snapshot) and then is not None:
                then()
        finally:
            connections.close_all()  # this thread's connections only
            self._busy.release()

    def wait(self, timeout: float) -> bool:
        """Wait until no recording runs (for graceful shutdown and tests); False on timeout."""
        if not self._busy.acquire(timeout=timeout):
            return False
        self._busy.release()
        return True


recorder = Recorder()
