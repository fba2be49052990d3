"""The per-process memo: one database read per TTL, however many threads ask at once; while one
thread reads, the others (and async code) use the last snapshot; a failed read keeps it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from pytest_django import DjangoAssertNumQueries

from maintenance_flags import store as store_module
from maintenance_flags.snapshot import Snapshot
from maintenance_flags.store import StateStore, store
from maintenance_flags.switches import set_switch
from tests.utils import turn

#: What the slow read below returns: site 1 in maintenance.
NEXT = Snapshot(switches={"maintenance_mode_site_1": True})


@contextmanager
def another_thread_refreshing(monkeypatch: pytest.MonkeyPatch, memo: StateStore = store) -> Iterator[None]:
    """Inside the block, another thread is in the middle of ``memo.get()``'s database read."""
    started, release = threading.Event(), threading.Event()

    def slow_load() -> Snapshot:
        started.set()
        release.wait(10)
        return NEXT

    monkeypatch.setattr(store_module, "load_snapshot", slow_load)
    thread = threading.Thread(target=memo.get)
    thread.start()
    assert started.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def in_threads(count: int, target: Callable[[], Snapshot]) -> list[Snapshot]:
    results: list[Snapshot] = []
    threads = [threading.Thread(target=lambda: results.append(target())) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_threads_that_start_together_read_the_database_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[float] = []

    def slow_load() -> Snapshot:
        reads.append(time.monotonic())
        time.sleep(0.2)  # the other threads queue on the lock meanwhile
        return NEXT

    monkeypatch.setattr(store_module, "load_snapshot", slow_load)
    memo = StateStore()  # no snapshot yet: every thread waits for the first read
    results = in_threads(4, memo.get)
    assert len(reads) == 1
    assert results == [NEXT] * 4


def test_threads_waiting_for_a_first_read_that_fails_get_the_fail_mode_state(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No snapshot yet and another thread's read fails: no thread raises; none knows the state."""
    reads: list[float] = []

    def failing_load() -> Snapshot:
        reads.append(time.monotonic())
        time.sleep(0.2)
        raise RuntimeError("database is down")

    monkeypatch.setattr(store_module, "load_snapshot", failing_load)
    memo = StateStore()
    results = in_threads(3, memo.get)
    assert len(results) == 3
    assert not any(snapshot.known for snapshot in results)
    assert len(reads) == 1  # one failed read per TTL, not one per waiting thread
    assert "using MAINTENANCE_FAIL_MODE" in caplog.text


@pytest.mark.django_db
def test_async_code_uses_the_last_snapshot_while_another_thread_refreshes(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    turn(True)
    first = store.get()
    store.invalidate()
    assert store.without_io() is None  # stale, and nobody is refreshing: the caller must read
    with another_thread_refreshing(monkeypatch), django_assert_num_queries(0):
        assert store.without_io() == first
    assert store.without_io() == NEXT


@pytest.mark.django_db
def test_peek_does_no_io(django_assert_num_queries: DjangoAssertNumQueries) -> None:
    with django_assert_num_queries(0):
        assert not store.peek().known  # nothing read yet
    turn(True)
    snapshot = store.get()
    store.invalidate()
    with django_assert_num_queries(0):
        assert store.peek() == snapshot  # stale, and still what it says


@pytest.mark.django_db
def test_other_threads_use_the_last_snapshot_while_one_refreshes(monkeypatch: pytest.MonkeyPatch) -> None:
    first = store.get()
    store.invalidate()
    with another_thread_refreshing(monkeypatch):
        started = time.monotonic()
        assert in_threads(1, store.get) == [first]
        assert time.monotonic() - started < 5  # did not wait for the read
    assert store.get() == NEXT


@pytest.mark.django_db
def test_failed_read_keeps_last_known_state(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    set_switch("maintenance_mode_site_1", True)
    known = store.get()
    assert known.switches["maintenance_mode_site_1"]

    def broken() -> Snapshot:
        raise RuntimeError("database is down")

    monkeypatch.setattr("maintenance_flags.store.load_snapshot", broken)
    store.invalidate()
    assert store.get() == known
    assert "using the last known state" in caplog.text
    store.reset()
    assert not store.get().known
    assert "using MAINTENANCE_FAIL_MODE" in caplog.text
    monkeypatch.undo()
    store.invalidate()
    assert store.get().known
    assert "can be read again" in caplog.text
