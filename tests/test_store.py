"""The per-process memo: one database read per TTL, however many threads ask at once; past the
TTL, every caller (async code too) is served the last snapshot while one background thread reads
the next (stale-while-revalidate); a process's first read and the read after a local write are the
caller's own; a failed read keeps the last snapshot."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from pytest_django import DjangoAssertNumQueries
from waffle.models import Switch

from maintenance_flags import store as store_module
from maintenance_flags.conf import DEFAULT_STATE_TTL as TTL
from maintenance_flags.names import site_switch_name
from maintenance_flags.schedule import recorder
from maintenance_flags.snapshot import Snapshot, load_snapshot
from maintenance_flags.state import state_for_site_id
from maintenance_flags.store import StateStore, store
from maintenance_flags.switches import set_switch
from tests.utils import settle, turn

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
def test_other_threads_use_the_last_snapshot_while_one_refreshes(
    monkeypatch: pytest.MonkeyPatch, later: Callable[[float], None]
) -> None:
    first = store.get()
    later(TTL)
    with another_thread_refreshing(monkeypatch):
        started = time.monotonic()
        assert in_threads(1, store.get) == [first]
        assert time.monotonic() - started < 5  # did not wait for the read
    settle()
    assert store.get() == NEXT


@pytest.mark.django_db(transaction=True)  # the background thread sees what is committed
def test_a_stale_read_is_served_at_once_and_one_thread_refreshes(
    monkeypatch: pytest.MonkeyPatch, later: Callable[[float], None]
) -> None:
    first = store.get()
    Switch.objects.filter(name=site_switch_name(1)).update(active=True)  # another process's change
    later(TTL)
    reads: list[str] = []
    started, release = threading.Event(), threading.Event()

    def gated_load() -> Snapshot:
        reads.append(threading.current_thread().name)
        started.set()
        release.wait(10)
        return load_snapshot()

    monkeypatch.setattr(store_module, "load_snapshot", gated_load)
    with CaptureQueriesContext(connection) as queries:
        assert [store.get() for _ in range(5)] == [first] * 5  # none waits for the refresh
        assert started.wait(10)
        assert in_threads(3, store.get) == [first] * 3
        assert store.without_io() == first
    assert len(queries) == 0
    release.set()
    settle()
    assert reads == ["maintenance_flags.refresh"]
    assert state_for_site_id(store.get(), 1).active


@pytest.mark.django_db
def test_a_local_write_is_read_by_the_caller_at_once() -> None:
    store.get()
    turn(True)
    with CaptureQueriesContext(connection) as queries:
        assert state_for_site_id(store.get(), 1).active
    assert len(queries) > 0  # the caller read it, not a background thread


@pytest.mark.django_db(transaction=True)
def test_a_read_begun_before_a_local_write_does_not_hide_it(
    monkeypatch: pytest.MonkeyPatch, later: Callable[[float], None]
) -> None:
    """A background refresh still reading when this process writes: the writer waits for it, then
    reads again itself (the refresh may have read the database before the write)."""
    store.get()
    later(TTL)
    started, release = threading.Event(), threading.Event()

    def stale_load() -> Snapshot:
        snapshot = load_snapshot()  # before the write
        started.set()
        release.wait(10)
        return snapshot

    monkeypatch.setattr(store_module, "load_snapshot", stale_load)
    store.get()  # starts the refresh
    assert started.wait(10)
    monkeypatch.setattr(store_module, "load_snapshot", load_snapshot)
    turn(True)
    threading.Timer(0.2, release.set).start()
    assert state_for_site_id(store.get(), 1).active
    assert state_for_site_id(store.get(), 1).active


@pytest.mark.django_db(transaction=True)
def test_the_background_thread_closes_its_database_connection(later: Callable[[float], None]) -> None:
    opened: list[BaseDatabaseWrapper] = []

    def created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        if threading.current_thread().name == "maintenance_flags.refresh":
            opened.append(connection)

    store.get()
    later(TTL)
    connection_created.connect(created)
    try:
        store.get()
        settle()
    finally:
        connection_created.disconnect(created)
    assert len(opened) == 1
    deadline = time.monotonic() + 10
    while opened[0].connection is not None:  # closed as the thread ends
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.django_db
def test_with_no_thread_to_refresh_in_the_caller_refreshes(
    monkeypatch: pytest.MonkeyPatch, later: Callable[[float], None]
) -> None:
    memo = StateStore()  # its background refresher is not started yet
    memo.get()
    later(TTL)

    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    Switch.objects.filter(name=site_switch_name(1)).update(active=True)  # another process's change
    assert not state_for_site_id(memo.get(), 1).active  # the last one, as ever past the TTL
    assert memo.fresh() is not None  # but read here, since no thread could
    assert state_for_site_id(memo.get(), 1).active


@pytest.mark.django_db
def test_a_failure_in_the_background_refresher_is_logged_and_it_goes_on(
    monkeypatch: pytest.MonkeyPatch, later: Callable[[float], None], caplog: pytest.LogCaptureFixture
) -> None:
    first = store.get()
    later(TTL)
    failures: list[None] = []

    def submit(snapshot: Snapshot, then: Any = None) -> bool:
        if not failures:
            failures.append(None)
            raise RuntimeError("boom")
        return False

    monkeypatch.setattr(recorder, "submit", submit)
    assert store.get() == first
    settle()  # read and kept, then the failure
    deadline = time.monotonic() + 10
    while "The background refresh of the maintenance state failed" not in caplog.text:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    later(TTL)
    store.get()
    settle()  # the refresher still answers
    assert failures == [None]


@override_settings(MAINTENANCE_STATE_TTL=0)
@pytest.mark.django_db
def test_a_ttl_of_zero_reads_in_the_caller_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    first = store.get()
    with CaptureQueriesContext(connection) as queries:
        store.get()
    assert len(queries) > 0
    with another_thread_refreshing(monkeypatch):
        assert in_threads(1, store.get) == [first]  # one is reading: the others use the last one


@pytest.mark.django_db
def test_a_failed_background_refresh_keeps_the_last_snapshot(
    monkeypatch: pytest.MonkeyPatch, later: Callable[[float], None], caplog: pytest.LogCaptureFixture
) -> None:
    first = store.get()
    later(TTL)

    def broken() -> Snapshot:
        raise RuntimeError("database is down")

    monkeypatch.setattr(store_module, "load_snapshot", broken)
    assert store.get() == first
    settle()  # tried, and not again before a TTL has passed
    assert store.get() == first
    assert "using the last known state" in caplog.text


@pytest.mark.django_db
def test_loops_that_look_every_tick_read_in_the_caller_past_the_ttl(later: Callable[[float], None]) -> None:
    """Celery's guard and the websocket ticker see a change at their first look past the TTL."""
    first = store.get()
    Switch.objects.filter(name=site_switch_name(1)).update(active=True)  # another process's change
    with CaptureQueriesContext(connection) as queries:
        assert store.current() == first
    assert len(queries) == 0
    later(TTL)
    with CaptureQueriesContext(connection) as queries:
        assert state_for_site_id(store.current(), 1).active
    assert len(queries) > 0


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
