"""The process-wide memo of the last snapshot, refreshed at most once per ``MAINTENANCE_STATE_TTL``.

A request at steady state costs no query. When the memo is older than the TTL, the request is
served the last snapshot at once and wakes the process's background refresher (one thread, idle
until asked), which reads the next (stale-while-revalidate): no visitor waits for a refresh, and a
snapshot is used at most a TTL plus one refresh after it was read. Only two reads are the
caller's own: a process's first, and the one after a local write (:meth:`StateStore.invalidate`),
so that the process that made a change sees it at once.

A refresh reads the database or, with ``MAINTENANCE_STATE_CACHE``, the fleet's shared copy
(:mod:`maintenance_flags.fleet`); a change committed here replaces that copy
(:meth:`StateStore.committed`). Reading never writes: transitions that fell due (a window opening
or closing, a planned end) are handed to :data:`maintenance_flags.schedule.recorder`, which
records them in a thread of its own.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import DEFAULT_DB_ALIAS, connections

from maintenance_flags.conf import conf
from maintenance_flags.fleet import Copy, SharedCopy
from maintenance_flags.schedule import recorder
from maintenance_flags.snapshot import UNKNOWN, Snapshot, load_snapshot

logger = logging.getLogger("maintenance_flags")

NEVER = float("-inf")


class StateStore:
    """The last snapshot and when it was read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one read at a time
        self._state = threading.Lock()  # the four fields below: a read installs them, a local write moves them
        self._snapshot: Snapshot | None = None
        self._fetched_at = NEVER  # NEVER: nothing read yet, or a local write since
        self._writes = 0  # local writes so far: a read begun before the last one is not fresh
        self._written = False  # a local write since the last read: the next read is from the database
        self._wake = threading.Event()  # set: the background refresher is asked for a refresh
        self._refresher: threading.Thread | None = None
        self._starting = threading.Lock()  # one refresher at a time is started
        self._shared = SharedCopy()
        self._published = threading.local()  # per database alias: how many publishes this thread began

    def fresh(self) -> Snapshot | None:
        """The memoised snapshot if it is younger than the TTL, else None (no I/O)."""
        if self._snapshot is not None and time.monotonic() - self._fetched_at < conf.MAINTENANCE_STATE_TTL:
            return self._snapshot
        return None

    def without_io(self) -> Snapshot | None:
        """A snapshot usable now with no I/O, or None when the caller must read (what async code takes
        before hopping to a thread): the fresh one; the last one while a background thread refreshes
        it; the last one while another thread reads."""
        fresh = self.fresh()
        if fresh is not None:
            return fresh
        if self._revalidates():
            self._revalidate()
            return self._snapshot
        return self._snapshot if self._lock.locked() else None

    def peek(self) -> Snapshot:
        """The last snapshot whatever its age, or UNKNOWN: for templates rendered after the middleware."""
        return self._snapshot if self._snapshot is not None else UNKNOWN

    def get(self) -> Snapshot:
        """The current snapshot: the memo; past the TTL, the last one while a thread refreshes it."""
        snapshot = self.fresh()
        if snapshot is not None:
            return snapshot
        last = self._snapshot
        if last is not None and self._revalidates():
            self._revalidate()
            return last
        # A first read, or the first after a local write, waits for a read in progress (which may
        # have begun before the write) and then makes its own; with a TTL of 0, the last one is used.
        return self._read(self._writes, wait=self._snapshot is None or self._written)

    def current(self) -> Snapshot:
        """A snapshot younger than the TTL, read by the caller if need be (waiting for a read in
        progress): for loops that look at the state every few tenths of a second and must see a
        change within the TTL plus one look (Celery's guard and beat, the websocket ticker), not
        two. A visitor's request takes :meth:`get`."""
        snapshot = self.fresh()
        return snapshot if snapshot is not None else self._read(self._writes, wait=True)

    def _read(self, writes: int, wait: bool) -> Snapshot:
        if not self._lock.acquire(blocking=wait):
            return self._snapshot or UNKNOWN  # another thread is reading: use the last one
        try:
            snapshot = self.fresh()
            if snapshot is not None:  # read by the thread this one waited for, after any local write
                return snapshot
            # A first read may come from the shared copy; the one after a local write may not.
            snapshot, read = self._refresh(writes, shared=not self._written)
        finally:
            self._lock.release()
        if read:
            self._recorded(snapshot)
        return snapshot

    def _revalidates(self) -> bool:
        """The memo is only old (not empty, no local write since, a TTL): a background thread refreshes it."""
        return self._snapshot is not None and self._fetched_at != NEVER and conf.MAINTENANCE_STATE_TTL > 0

    def _revalidate(self) -> None:
        """Ask the background refresher for a refresh: no I/O, and no wait for a thread to start but the
        first time (and the first time in a forked child)."""
        self._wake.set()
        with self._starting:
            if self._refresher is not None and self._refresher.is_alive():
                return
            thread = threading.Thread(target=self._refresh_loop, name="maintenance_flags.refresh", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread can be started (the interpreter is exiting)
                pass
            else:
                self._refresher = thread
                return
        self._wake.clear()
        self._refresh_if_old()  # here, then

    def _refresh_loop(self) -> None:
        """The background refresher: one per process, idle until asked; it closes its database
        connections after each refresh."""
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self._refresh_if_old()
            except Exception:  # never let the refresher die
                logger.warning("The background refresh of the maintenance state failed", exc_info=True)
            finally:
                connections.close_all()  # this thread's connections only

    def _refresh_if_old(self) -> None:
        """Refresh the memo, unless it was refreshed meanwhile or a local write came (its read is the caller's)."""
        writes = self._writes  # before the checks: a local write after them makes the read not fresh
        with self._lock:
            if self.fresh() is not None or not self._revalidates():
                return
            snapshot, read = self._refresh(writes, shared=True)
        if read:
            self._recorded(snapshot)

    def _refresh(self, writes: int, shared: bool) -> tuple[Snapshot, bool]:
        """The new snapshot and True, or (after a failed read) the last known one and False."""
        started = time.monotonic()  # the data is as old as the moment the read began
        try:
            copy = self._load(shared)
        except Exception:  # any failure: database down, ...
            logger.warning(
                "Could not read the maintenance state; using %s",
                "the last known state" if self._snapshot is not None else "MAINTENANCE_FAIL_MODE",
                exc_info=True,
            )
            with self._state:
                if self._writes == writes:
                    self._snapshot = self._snapshot if self._snapshot is not None else UNKNOWN
                    self._fetched_at = time.monotonic()  # retry at most once per TTL after a failed read
            return (self._snapshot if self._snapshot is not None else UNKNOWN), False
        if self._snapshot is not None and not self._snapshot.known:
            logger.warning("The maintenance state can be read again")
        self._install(copy.snapshot, writes, started - copy.late)
        return copy.snapshot, True

    def _load(self, shared: bool) -> Copy:
        alias = self._alias()
        if shared and alias is not None:
            return self._shared.fetch(alias, load_snapshot)
        return Copy(load_snapshot())

    def _install(self, snapshot: Snapshot, writes: int, fetched_at: float) -> None:
        """Keep what a read returned, unless a local write came after the read began."""
        with self._state:
            if self._writes == writes:
                self._snapshot = snapshot
                self._fetched_at = fetched_at
                self._written = False

    def _recorded(self, snapshot: Snapshot) -> None:
        recorder.submit(snapshot, then=self.publish)  # no I/O here: a thread, only when something fell due

    def _alias(self) -> str | None:
        """The cache holding the fleet's shared copy, if the tier is on (not with a TTL of 0)."""
        return conf.MAINTENANCE_STATE_CACHE if conf.MAINTENANCE_STATE_TTL > 0 else None

    def invalidate(self) -> None:
        """Forget the memo: the next read is the caller's own, from the database (a local write)."""
        with self._state:
            self._writes += 1
            self._fetched_at = NEVER
            self._written = True

    def publishes(self, using: str | None = None) -> int:
        """How many publishes this thread began for the database ``using``: a write takes this number
        before it commits, and :meth:`committed` then knows whether a publish after it saw it."""
        return int(getattr(self._published, using or DEFAULT_DB_ALIAS, 0))

    def committed(self, after: int, using: str | None = None) -> None:
        """After a local change committed: replace the fleet's shared copy now (unless this thread
        began a publish since ``after``, which saw the change: the saves of one transaction publish
        once); without a shared copy, forget the memo again (a read made before the commit could
        not see the change)."""
        if self._alias() is None:
            self.invalidate()
        elif self.publishes(using) <= after:
            self.publish(using)

    def publish(self, using: str | None = None) -> None:
        """Read the database and replace the fleet's shared copy and the memo (without one, nothing).
        Never raises."""
        alias = self._alias()
        if alias is None:
            return
        setattr(self._published, using or DEFAULT_DB_ALIAS, self.publishes(using) + 1)
        started = time.monotonic()
        writes = self._writes
        try:
            snapshot = self._shared.publish(alias, load_snapshot)
        except Exception:
            logger.warning("Could not read the maintenance state to share it", exc_info=True)
            self.invalidate()
            return
        self._install(snapshot, writes, started)

    def reset(self) -> None:
        """Forget everything, including the last known state (for tests)."""
        with self._lock, self._state:
            self._writes += 1
            self._snapshot = None
            self._fetched_at = NEVER
            self._written = False
            self._shared.forget()


store = StateStore()
