"""The process-wide memo of the last snapshot, refreshed at most once per ``MAINTENANCE_STATE_TTL``.

A request at steady state costs no query; the request that finds the memo older than the TTL
reads the database (one thread at a time: the others keep using the last snapshot). Reading
never writes: once the lock is released, transitions that fell due (a window opening or
closing, a planned end) are handed to :data:`maintenance_flags.schedule.recorder`, which
records them in a background thread.
"""

from __future__ import annotations

import logging
import threading
import time

from maintenance_flags.conf import conf
from maintenance_flags.schedule import recorder
from maintenance_flags.snapshot import UNKNOWN, Snapshot, load_snapshot

logger = logging.getLogger("maintenance_flags")


class StateStore:
    """The last snapshot and when it was read."""

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
            snapshot = self.fresh()
            if snapshot is not None:  # refreshed by the thread this one waited for
                return snapshot
            snapshot, read = self._refresh()
        finally:
            self._lock.release()
        if read:
            recorder.submit(snapshot)  # no I/O here: a thread, only when something fell due
        return snapshot

    def _refresh(self) -> tuple[Snapshot, bool]:
        """The new snapshot and True, or (after a failed read) the last known one and False."""
        started = time.monotonic()  # the data is as old as the moment the read began
        try:
            snapshot = load_snapshot()
        except Exception:  # any failure: database down, ...
            logger.warning(
                "Could not read the maintenance state; using %s",
                "the last known state" if self._snapshot is not None else "MAINTENANCE_FAIL_MODE",
                exc_info=True,
            )
            self._snapshot = self._snapshot if self._snapshot is not None else UNKNOWN
            self._fetched_at = time.monotonic()  # retry at most once per TTL after a failed read
            return self._snapshot, False
        if self._snapshot is not None and not self._snapshot.known:
            logger.warning("The maintenance state can be read again")
        self._snapshot = snapshot
        self._fetched_at = started
        return snapshot, True

    def invalidate(self) -> None:
        """Forget the memo: the next request reads the database (used after local writes)."""
        self._fetched_at = float("-inf")

    def reset(self) -> None:
        """Forget everything, including the last known state (for tests)."""
        with self._lock:
            self._snapshot = None
            self._fetched_at = float("-inf")


store = StateStore()
