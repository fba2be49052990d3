"""The fleet tier: one copy of the snapshot shared by every process, in a Django cache.

With ``MAINTENANCE_STATE_CACHE`` naming a ``CACHES`` alias (a Redis cache, say), the store takes
a newer snapshot from that cache rather than from the database. The cache holds two keys (under
the backend's own ``KEY_PREFIX`` and ``VERSION``):

``maintenance_flags:state:v1:record``
    ``(FORMAT, stamp, written_at, blob)``: the pickled snapshot (``blob``, pickled here), its
    digest (``stamp``: a process already holding the snapshot of that stamp keeps it, and all
    that was derived from it, without unpickling anything; the state read again unchanged keeps
    its stamp), and ``written_at``, the wall-clock time at which its database read began.
``maintenance_flags:state:v1:lease``
    held (``cache.add``, for a TTL) by the one process that reads the database to replace a record
    older than the TTL.

A process reads the record once per TTL. Younger than the TTL: its snapshot, no query. Missing,
older, or not a record of this format: the process that wins the lease reads the database and
writes a new record; the others keep the old copy meanwhile (their memo keeps it a little less
long), or, with no usable copy at all, read the database themselves (a cold start). A change
made through Django replaces the record as soon as it commits (:meth:`SharedCopy.publish`).

The cache down or slow (keep its client timeouts short): every call fails fast into
:class:`CacheDown`; the process reads the database as without the tier, logs one WARNING per
outage, and one when the cache answers again. A value the backend cannot decode, or one that is
not ours, is replaced by the process that wins the lease. Nothing here raises to a request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache

from maintenance_flags.conf import conf
from maintenance_flags.snapshot import Snapshot

logger = logging.getLogger("maintenance_flags")

FORMAT = 1  # bump with any change to Snapshot's pickled fields: the key changes with it
PREFIX = f"maintenance_flags:state:v{FORMAT}"
RECORD_KEY = f"{PREFIX}:record"
LEASE_KEY = f"{PREFIX}:lease"
#: How long the cache keeps a record nobody replaces (the database down, a quiet fleet): a day.
RECORD_TIMEOUT = 86400

Load = Callable[[], Snapshot]
_T = TypeVar("_T")


class CacheDown(Exception):
    """The cache could not be used (unreachable, timed out, misconfigured)."""


@dataclass(frozen=True)
class Record:
    stamp: str
    written_at: float
    blob: bytes

    @classmethod
    def parse(cls, value: object) -> Record | None:
        """The record in a value read from the cache, or None if it is not one of this format."""
        if not isinstance(value, tuple) or len(value) != 4:
            return None
        version, stamp, written_at, blob = value
        if version != FORMAT or not isinstance(stamp, str) or type(written_at) is not float:
            return None
        return cls(stamp, written_at, blob) if isinstance(blob, bytes) else None

    def value(self) -> tuple[int, str, float, bytes]:
        return FORMAT, self.stamp, self.written_at, self.blob

    def age(self) -> float:
        return time.time() - self.written_at


@dataclass(frozen=True)
class Copy:
    """A snapshot from the tier, and how much older than the TTL it already is (0 for a fresh one)."""

    snapshot: Snapshot
    late: float = 0.0


class SharedCopy:
    """One process's side of the shared record: its cache client, the last record it held, outages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one cache call at a time: the client is shared by threads
        self._client: tuple[tuple[object, str, int], BaseCache] | None = None
        self._held: tuple[str, Snapshot] | None = None  # the stamp and snapshot of the last record seen
        self._down = False

    def fetch(self, alias: str, load: Load) -> Copy:
        """The snapshot to use now (see the module docstring); raises only what ``load`` raises."""
        ttl = conf.MAINTENANCE_STATE_TTL
        problem = ""
        try:
            value = self._call(alias, lambda cache: cache.get(RECORD_KEY))
        except CacheDown as exc:  # down, or a value the backend cannot decode: the lease tells which
            record, problem = None, f"it cannot be read: {exc}"
        else:
            record = Record.parse(value)
            if record is None and value is not None:
                problem = "it is not a record of this format"
        if record is not None and abs(record.age()) < ttl:
            snapshot = self._open(record)
            if snapshot is not None:
                return Copy(snapshot)
            record, problem = None, "its snapshot cannot be unpickled"
        try:
            leased = self._call(alias, lambda cache: cache.add(LEASE_KEY, os.getpid(), timeout=math.ceil(ttl)))
        except CacheDown as exc:
            self._failed(alias, exc)
            return Copy(load())
        if leased:
            if problem:
                logger.warning("Replacing the value of %r in the cache %r (%s)", RECORD_KEY, alias, problem)
            return Copy(self._write(alias, load))
        if record is not None:  # another process is replacing it: keep the old copy meanwhile
            stale = self._open(record)
            if stale is not None:
                return Copy(stale, late=min(max(record.age() - ttl, 0.0), ttl / 2))
        return Copy(load())  # a cold start: no copy to use while another process writes one

    def publish(self, alias: str, load: Load) -> Snapshot:
        """Read the database and replace the record (after a local change committed)."""
        return self._write(alias, load)

    def forget(self) -> None:
        """Forget the client, the record held and any outage (for tests)."""
        self._client = None
        self._held = None
        self._down = False

    def _write(self, alias: str, load: Load) -> Snapshot:
        written_at = time.time()  # the data is as old as the moment the read began
        snapshot = load()
        blob = pickle.dumps(snapshot, pickle.HIGHEST_PROTOCOL)
        record = Record(hashlib.blake2b(blob, digest_size=16).hexdigest(), written_at, blob)
        held = self._held
        if held is not None and held[0] == record.stamp:
            snapshot = held[1]  # the same state: keep the object, and what was derived from it
        self._held = (record.stamp, snapshot)
        try:
            self._call(alias, lambda cache: cache.set(RECORD_KEY, record.value(), timeout=RECORD_TIMEOUT))
        except CacheDown as exc:
            self._failed(alias, exc)
        return snapshot

    def _open(self, record: Record) -> Snapshot | None:
        """The record's snapshot: the one held if the stamp is the same, else unpickled; None if unusable."""
        held = self._held
        if held is not None and held[0] == record.stamp:
            return held[1]
        try:
            snapshot = pickle.loads(record.blob)
        except Exception:
            return None
        if not isinstance(snapshot, Snapshot):
            return None
        self._held = (record.stamp, snapshot)
        return snapshot

    def _call(self, alias: str, operation: Callable[[BaseCache], _T]) -> _T:
        """One cache call; any failure raises :class:`CacheDown`. A success ends an outage."""
        try:
            with self._lock:
                result = operation(self._cache(alias))
        except Exception as exc:
            raise CacheDown(f"{type(exc).__name__}: {exc}") from exc
        if self._down:
            self._down = False
            logger.warning("The state cache %r answers again", alias)
        return result

    def _cache(self, alias: str) -> BaseCache:
        """This process's client for ``alias``, shared by its threads (``caches[alias]`` is one per
        thread, each with its connections), made again when settings change or in a forked child."""
        key = (conf.generation, alias, os.getpid())
        if self._client is None or self._client[0] != key:
            self._client = (key, caches.create_connection(alias))
        return self._client[1]

    def _failed(self, alias: str, exc: CacheDown) -> None:
        if not self._down:
            self._down = True
            logger.warning(
                "The state cache %r cannot be used (%s): reading the maintenance state from the database "
                "until it answers",
                alias,
                exc,
            )
