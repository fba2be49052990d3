"""The fleet tier (``MAINTENANCE_STATE_CACHE``) with the real Redis, in one process.

Each ``StateStore()`` here stands for one server process (its own memo, its own side of the
shared copy); ``tests/test_fleet_processes.py`` shows the same with real processes. The database
is committed (``transaction=True``): refreshes past the TTL run in a background thread, which sees
only what is committed, as another process would.
"""

from __future__ import annotations

import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from maintenance_flags import store as store_module
from maintenance_flags.fleet import FORMAT, RECORD_KEY, Record
from maintenance_flags.models import MaintenanceWindow
from maintenance_flags.schedule import recorder
from maintenance_flags.snapshot import Snapshot, load_snapshot
from maintenance_flags.state import state_for_site_id
from maintenance_flags.store import StateStore, store
from tests.fleet_support import ALIAS, RedisKeys, redis_cache, redis_keys
from tests.servers import TcpProxy, free_port
from tests.utils import settle, turn

pytestmark = pytest.mark.django_db(transaction=True)

TTL = 2.0
WARNING_DOWN = "cannot be used"
WARNING_BACK = "answers again"


@pytest.fixture
def keys() -> Iterator[RedisKeys]:
    with redis_keys() as keys:
        yield keys


def use_cache(settings: Any, entry: dict[str, Any], ttl: float = TTL) -> None:
    settings.CACHES = {**settings.CACHES, ALIAS: entry}
    settings.MAINTENANCE_STATE_CACHE = ALIAS
    settings.MAINTENANCE_STATE_TTL = ttl


@pytest.fixture
def tier(keys: RedisKeys, settings: Any) -> RedisKeys:
    """The tier on, on the real Redis, under this test's own key prefix."""
    use_cache(settings, redis_cache(keys.prefix))
    return keys


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read of the state from the database (by any store), named by the thread that made it."""
    made: list[str] = []

    def counted() -> Snapshot:
        made.append(threading.current_thread().name)
        return load_snapshot()

    monkeypatch.setattr(store_module, "load_snapshot", counted)
    return made


def age_record(keys: RedisKeys, seconds: float) -> None:
    """Make the shared copy look ``seconds`` older, as if nobody had replaced it since (so the
    lease taken when it was written has run out)."""
    version, stamp, written_at, blob = keys.record()
    keys.write_raw(pickle.dumps((version, stamp, written_at - seconds, blob)))
    keys.drop_lease()


def on(snapshot: Snapshot, site_id: int | None = 1) -> bool:
    return state_for_site_id(snapshot, site_id).active


# --- the shared copy ---------------------------------------------------------------------------


def test_a_process_takes_a_fresh_shared_copy_with_no_query(tier: RedisKeys) -> None:
    first = StateStore()
    written = first.get()  # no copy yet: this process reads the database and writes one
    assert tier.stamp() is not None
    other = StateStore()
    with CaptureQueriesContext(connection) as queries:
        snapshot = other.get()
    assert len(queries) == 0
    assert snapshot == written
    assert not on(snapshot)


def test_without_the_tier_each_process_reads_the_database(keys: RedisKeys) -> None:
    with CaptureQueriesContext(connection) as queries:
        StateStore().get()
    assert len(queries) > 0
    assert keys.record() is None


def test_the_tier_is_off_with_a_ttl_of_zero(tier: RedisKeys, settings: Any, reads: list[str]) -> None:
    settings.MAINTENANCE_STATE_TTL = 0
    memo = StateStore()
    memo.get()
    memo.get()
    assert len(reads) == 2
    assert tier.record() is None


@override_settings(MAINTENANCE_503_PRERENDER=True)  # the page is made once per state, then kept
def test_an_unchanged_state_is_not_unpickled_and_keeps_what_was_made_from_it(
    tier: RedisKeys, reads: list[str], later: Callable[[float], None], renders: list[str]
) -> None:
    """A process holding the snapshot of the copy's stamp keeps it, and all that was made from it
    (per-site states, prepared exemptions, response bodies): the maintenance page is made once,
    not once per refresh, even when the copy is read again from the database."""
    turn(True)  # shared at once, and this process's memo with it
    stamp = tier.stamp()
    client = Client()
    assert client.get("/").status_code == 503
    made = len(renders)
    assert made > 0
    # Past this process's TTL, while the copy is still fresh: it reads the copy, the same stamp.
    later(TTL)
    reads.clear()
    assert client.get("/").status_code == 503  # at once: the last one, while a thread refreshes it
    settle()
    assert client.get("/").status_code == 503
    assert reads == []
    # Past the copy's TTL it is read again from the database: the same state keeps its stamp.
    age_record(tier, TTL + 1)
    later(TTL)
    assert client.get("/").status_code == 503
    settle()
    assert client.get("/").status_code == 503
    assert reads == ["maintenance_flags.refresh"]  # this process won the lease
    assert tier.stamp() == stamp
    assert len(renders) == made


def test_a_changed_state_gets_a_new_stamp(tier: RedisKeys, later: Callable[[float], None]) -> None:
    memo = StateStore()
    first = memo.get()
    stamp = tier.stamp()
    turn(True)
    assert tier.stamp() != stamp
    later(TTL)
    memo.get()
    settle(memo)
    assert memo.get() != first
    assert on(memo.get())


def test_the_lease_lets_one_process_read_the_database(tier: RedisKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    StateStore().get()
    age_record(tier, TTL + 0.5)  # the copy is old: each process that reads it now wants it replaced
    made: list[float] = []

    def slow_load() -> Snapshot:
        made.append(time.monotonic())
        time.sleep(0.3)  # the other processes read the copy meanwhile
        return load_snapshot()

    monkeypatch.setattr(store_module, "load_snapshot", slow_load)
    results: list[Snapshot] = []

    def process() -> None:
        try:
            results.append(StateStore().get())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=process) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(made) == 1  # one process read the database; five used the old copy meanwhile
    assert len(results) == 6
    assert all(r == results[0] for r in results)
    record = Record.parse(tier.record())
    assert record is not None and abs(record.age()) < TTL  # replaced


def test_the_old_copy_is_kept_a_little_less_long(
    tier: RedisKeys, reads: list[str], later: Callable[[float], None]
) -> None:
    """An old copy, used while another process replaces it, is never used past twice the TTL."""
    StateStore().get()
    age_record(tier, TTL + 0.5)
    tier.take_lease()  # another process is replacing it
    reads.clear()
    memo = StateStore()
    memo.get()
    assert reads == []
    later(TTL - 1.0)  # (margins for a loaded machine: the record's age runs on the wall clock)
    assert memo.fresh() is not None
    later(0.6)  # it was already 0.5 s past the TTL: kept a TTL less those 0.5 s
    assert memo.fresh() is None


def test_a_cold_start_reads_the_database_and_leaves_the_copy_to_the_lease(tier: RedisKeys, reads: list[str]) -> None:
    tier.take_lease()  # another process is writing the first copy
    assert not on(StateStore().get())
    assert len(reads) == 1
    assert tier.record() is None


def test_a_copy_written_far_in_the_future_is_replaced(tier: RedisKeys, reads: list[str]) -> None:
    """A clock ahead by more than the TTL on the machine that wrote it does not make it fresh for ever."""
    StateStore().get()
    age_record(tier, -(TTL + 5))
    reads.clear()
    StateStore().get()
    assert len(reads) == 1
    record = Record.parse(tier.record())
    assert record is not None and abs(record.age()) < TTL


# --- writes replace the copy -------------------------------------------------------------------


def test_a_local_write_replaces_the_shared_copy(tier: RedisKeys, reads: list[str]) -> None:
    StateStore().get()
    stamp = tier.stamp()
    reads.clear()
    turn(True)  # a Switch.save(): the receivers publish it once committed (autocommit: now)
    assert tier.stamp() != stamp
    assert reads == ["MainThread"]
    other = StateStore()
    with CaptureQueriesContext(connection) as queries:
        assert on(other.get())
    assert len(queries) == 0
    with CaptureQueriesContext(connection) as queries:
        assert on(store.get())  # the writing process: its memo was replaced too
    assert len(queries) == 0


def test_the_saves_of_one_transaction_publish_once(tier: RedisKeys, reads: list[str]) -> None:
    with transaction.atomic():
        turn(True)
        turn(True, site_id=None)
        assert tier.record() is None  # nothing shared before the commit
    assert reads == ["MainThread"]
    assert on(StateStore().get())
    assert state_for_site_id(StateStore().get(), 2).active  # the global switch


def test_nothing_is_shared_from_a_transaction_rolled_back(tier: RedisKeys, reads: list[str]) -> None:
    StateStore().get()
    stamp = tier.stamp()
    with transaction.atomic():
        turn(True)
        assert on(store.get())  # the writing thread sees its own change at once
        transaction.set_rollback(True)
    assert tier.stamp() == stamp
    assert not on(StateStore().get())


def test_a_failed_publish_is_logged_and_the_next_read_is_the_callers(
    tier: RedisKeys, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store.get()

    def broken() -> Snapshot:
        raise RuntimeError("database is down")

    monkeypatch.setattr(store_module, "load_snapshot", broken)
    store.committed(store.publishes())
    assert "Could not read the maintenance state to share it" in caplog.text
    assert store.fresh() is None
    monkeypatch.setattr(store_module, "load_snapshot", load_snapshot)
    turn(True)
    assert on(store.get())


@pytest.mark.recorder
def test_a_window_opening_recorded_replaces_the_shared_copy(tier: RedisKeys) -> None:
    MaintenanceWindow.objects.create(site_id=1, starts_at=timezone.now() - timedelta(seconds=5))
    assert Record.parse(tier.record()) is not None  # shared, not yet recorded as opened
    store.invalidate()  # the next read finds the opening due: the recorder records it in a thread
    assert Client().get("/").status_code == 503
    assert recorder.wait(10)

    def opened() -> bool:
        record = Record.parse(tier.record())
        return record is not None and all(w.opened for w in pickle.loads(record.blob).windows)

    deadline = time.monotonic() + 10
    while not opened():
        assert time.monotonic() < deadline
        time.sleep(0.02)


# --- failures ----------------------------------------------------------------------------------


@pytest.fixture
def proxy(keys: RedisKeys, settings: Any) -> Iterator[TcpProxy]:
    """The tier on, through a proxy to Redis that the test can close."""
    link = TcpProxy(6379).open()
    use_cache(settings, redis_cache(keys.prefix, port=link.port))
    yield link
    link.close()


def test_the_cache_down_reads_the_database_warns_once_and_recovers(
    proxy: TcpProxy,
    keys: RedisKeys,
    reads: list[str],
    later: Callable[[float], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy.close()
    turn(True)  # the publish fails: logged as the start of the outage
    memo = StateStore()
    started = time.monotonic()
    assert on(memo.get())  # from the database
    assert time.monotonic() - started < 1
    for _ in range(3):
        later(TTL)
        memo.get()
        settle(memo)
    assert reads.count("maintenance_flags.refresh") == 3  # each refresh read the database itself
    assert caplog.text.count(WARNING_DOWN) == 2  # once in this test's store, once in the process's
    assert WARNING_BACK not in caplog.text
    proxy.open()
    later(TTL)
    memo.get()
    settle(memo)
    assert caplog.text.count(WARNING_BACK) == 1
    assert keys.record() is not None  # the copy is shared again
    assert on(StateStore().get())


def test_a_cache_that_does_not_answer_costs_its_client_timeouts(
    keys: RedisKeys, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A listening socket that never answers: each call waits its socket timeout (0.1 s), no more."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        use_cache(settings, redis_cache(keys.prefix, port=silent.getsockname()[1]))
        started = time.monotonic()
        assert not on(StateStore().get())
        elapsed = time.monotonic() - started
    assert elapsed < 1.0  # a GET and a lease, 0.1 s each, and the database
    assert caplog.text.count(WARNING_DOWN) == 1


def test_an_alias_missing_from_caches_reads_the_database(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.MAINTENANCE_STATE_CACHE = "no-such-cache"  # check E004 says so
    turn(True)
    assert Client().get("/").status_code == 503
    assert WARNING_DOWN in caplog.text


def foreign_snapshot() -> bytes:
    return pickle.dumps(load_snapshot())


GARBAGE: dict[str, Callable[[], bytes]] = {
    "not a pickle": lambda: b"\x00garbage",
    "a class that does not exist": lambda: b"cno_such_module\nThing\n.",
    "a foreign value": lambda: pickle.dumps({"state": "on"}),
    "a short tuple": lambda: pickle.dumps((FORMAT, "stamp")),
    "another format": lambda: pickle.dumps((FORMAT + 1, "stamp", time.time(), foreign_snapshot())),
    "a time that is not a float": lambda: pickle.dumps((FORMAT, "stamp", int(time.time()), foreign_snapshot())),
    "a blob that is not bytes": lambda: pickle.dumps((FORMAT, "stamp", time.time(), "text")),
    "a blob that is not a pickle": lambda: pickle.dumps((FORMAT, "stamp", time.time(), b"\x00garbage")),
    "a blob that is not a snapshot": lambda: pickle.dumps((FORMAT, "stamp", time.time(), pickle.dumps([1, 2]))),
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_in_the_key_is_replaced(
    garbage: Callable[[], bytes], tier: RedisKeys, caplog: pytest.LogCaptureFixture
) -> None:
    turn(True)
    tier.write_raw(garbage())
    memo = StateStore()
    assert on(memo.get())
    assert f"Replacing the value of {RECORD_KEY!r}" in caplog.text
    record = Record.parse(tier.record())
    assert record is not None and on(pickle.loads(record.blob))
    store.reset()
    assert Client().get("/").status_code == 503


def test_garbage_while_another_process_holds_the_lease_is_a_cold_start(tier: RedisKeys, reads: list[str]) -> None:
    tier.write_raw(b"\x00garbage")
    tier.take_lease()
    assert not on(StateStore().get())
    assert reads == ["MainThread"]


def test_an_old_copy_that_cannot_be_read_while_another_process_holds_the_lease_is_a_cold_start(
    tier: RedisKeys, reads: list[str]
) -> None:
    tier.write_raw(pickle.dumps((FORMAT, "stamp", time.time() - TTL - 1, b"\x00garbage")))
    tier.take_lease()
    assert not on(StateStore().get())
    assert reads == ["MainThread"]


def test_an_unreachable_cache_with_free_port_is_an_outage(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    use_cache(settings, redis_cache("mf-unused", port=free_port()))
    turn(True)
    assert caplog.text.count(WARNING_DOWN) == 1
    assert on(StateStore().get())
