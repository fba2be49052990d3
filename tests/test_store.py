"""The per-process memo: one database read per TTL, however many threads ask at once."""

from __future__ import annotations

import threading
import time

import pytest

from maintenance_flags import store as store_module
from maintenance_flags.snapshot import Snapshot
from maintenance_flags.store import StateStore


def test_threads_that_start_together_read_the_database_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[float] = []

    def slow_load() -> Snapshot:
        reads.append(time.monotonic())
        time.sleep(0.2)  # the other threads queue on the lock meanwhile
        return Snapshot()

    monkeypatch.setattr(store_module, "load_snapshot", slow_load)
    memo = StateStore()  # no snapshot yet: every thread waits for the first read
    results: list[Snapshot] = []
    threads = [threading.Thread(target=lambda: results.append(memo.get())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(reads) == 1
    assert len(results) == 4 and all(r is results[0] for r in results)
