"""The fleet tier with real processes: six gunicorn servers on one database share the state
through Redis (``MAINTENANCE_STATE_CACHE``, TTL 1 s).

Each server logs every read of the state from the database (a DEBUG line of
``load_snapshot``): counted over a few seconds of steady polling, the six read it about once per
TTL in all, where without the tier each reads it once per TTL. A change made by another process
(``manage.py setmaintenance``) reaches all six within the TTL, a plain SQL ``UPDATE`` within twice
the TTL; Redis cut off (a proxy in front of it, closed) or garbage written into the key changes
nothing a visitor sees: never a 500, always the right status.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import connection

from maintenance_flags.fleet import Record
from maintenance_flags.names import site_switch_name, switch_model
from tests.fleet_support import REDIS_PORT, RedisKeys, redis_keys, redis_url
from tests.servers import (
    OK_AND_MAINTENANCE,
    Server,
    TcpProxy,
    converge,
    db_env,
    manage,
    report_figure,
    running,
    wait_until,
)

pytestmark = [pytest.mark.servers, pytest.mark.django_db(transaction=True)]

TTL = 1.0
MARGIN = 2.0  # polling, one request, a loaded 2-core machine (as tests/test_servers.py)
PROCESSES = 6
WINDOW = 5.0  # seconds of steady polling over which database reads are counted
READ_LINE = "Reading the maintenance state from the database"
WARNING_DOWN = "cannot be used"
WARNING_BACK = "answers again"
SWITCH = site_switch_name(1)
#: The servers' logging: every database read of the state, one line each.
DEBUG_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"maintenance_flags": {"handlers": ["console"], "level": "DEBUG"}},
}


@dataclass
class Fleet:
    env: dict[str, str]
    servers: tuple[Server, ...]
    redis: TcpProxy  # the servers' (and their commands') only way to Redis
    keys: RedisKeys

    def count(self, text: str) -> int:
        return sum(server.log().count(text) for server in self.servers)


def servers(env: dict[str, str]) -> tuple[Server, ...]:
    return tuple(
        Server("gunicorn", env, settings={"LOGGING": DEBUG_LOGGING}, name=f"gunicorn-{i}") for i in range(PROCESSES)
    )


@pytest.fixture(scope="module")
def fleet(django_db_setup: None) -> Iterator[Fleet]:
    with redis_keys() as keys:
        proxy = TcpProxy(REDIS_PORT).open()
        env = {
            **db_env(connection.settings_dict),
            "MF_STATE_TTL": str(TTL),
            "MF_STATE_CACHE_URL": redis_url(proxy.port),
            "MF_STATE_CACHE_PREFIX": keys.prefix,
        }
        try:
            with running(*servers(env)) as started:
                yield Fleet(env, started, proxy, keys)
        finally:
            proxy.close()


def poll(fleet_servers: tuple[Server, ...], seconds: float) -> list[int | None]:
    """Ask every server for "/" in turn for ``seconds``: every process serves requests (and so
    refreshes its state) all along. The statuses served."""
    seen: list[int | None] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen += [server.status() for server in fleet_servers]
        time.sleep(0.02)
    return seen


def reads_while_polling(fleet_servers: tuple[Server, ...]) -> int:
    """Database reads of the state made by all the servers over ``WINDOW`` seconds of polling."""
    before = sum(server.log().count(READ_LINE) for server in fleet_servers)
    seen = poll(fleet_servers, WINDOW)
    assert set(seen) == {200}, seen
    return sum(server.log().count(READ_LINE) for server in fleet_servers) - before


def sql_update(name: str, active: bool) -> None:
    """Change the row behind Django's back: no signal, nothing published."""
    table = connection.ops.quote_name(switch_model()._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET active = %s WHERE name = %s", [active, name])
        assert cursor.rowcount == 1


def shared_record(keys: RedisKeys) -> Record | None:
    try:
        return Record.parse(keys.record())
    except pickle.UnpicklingError:  # garbage in the key
        return None


def assert_all_serve(fleet: Fleet, expected: int, timeout: float, label: str) -> float:
    """Every server serves ``expected`` within ``timeout`` (never anything but 200 or 503 on the
    way); the slowest one's seconds."""
    start = time.monotonic()
    result = converge(fleet.servers, expected, timeout, since=start)
    for name, statuses in result.seen.items():
        assert set(statuses) <= OK_AND_MAINTENANCE, (label, name, statuses)
    return max(result.elapsed.values())


def test_six_processes_read_the_database_about_once_per_ttl_in_all(fleet: Fleet) -> None:
    assert_all_serve(fleet, 200, 2 * TTL + MARGIN, "start")
    reads = reads_while_polling(fleet.servers)
    report_figure("fleet[tier]", f"database reads by {PROCESSES} processes in {WINDOW:g} s at TTL {TTL:g} s", reads)
    # One per TTL for the whole fleet (the lease), give or take the window's edges; not one per process.
    assert WINDOW / TTL - 2 <= reads <= WINDOW / TTL + 2


def test_without_the_tier_each_process_reads_the_database_once_per_ttl(django_db_setup: None) -> None:
    """The same count without the tier: what the tier saves, and proof that the count counts."""
    env = {**db_env(connection.settings_dict), "MF_STATE_TTL": str(TTL)}
    with running(*servers(env)) as started:
        converge(started, 200, TTL + MARGIN)
        reads = reads_while_polling(started)
    report_figure("fleet[no tier]", f"database reads by {PROCESSES} processes in {WINDOW:g} s at TTL {TTL:g} s", reads)
    assert reads >= PROCESSES * (WINDOW / TTL - 2)


def test_changes_reach_every_process_within_the_ttl(fleet: Fleet) -> None:
    assert_all_serve(fleet, 200, 2 * TTL + MARGIN, "start")
    manage("setmaintenance", "on", env=fleet.env)  # another process: it replaces the shared copy
    lag = assert_all_serve(fleet, 503, TTL + MARGIN, "setmaintenance on")
    report_figure("fleet[tier]", "setmaintenance on", round(lag, 3))
    manage("setmaintenance", "off", env=fleet.env)
    lag = assert_all_serve(fleet, 200, TTL + MARGIN, "setmaintenance off")
    report_figure("fleet[tier]", "setmaintenance off", round(lag, 3))
    sql_update(SWITCH, True)  # nothing published: seen when the copy is refreshed from the database
    lag = assert_all_serve(fleet, 503, 2 * TTL + MARGIN, "sql update on")
    report_figure("fleet[tier]", "sql update on", round(lag, 3))
    sql_update(SWITCH, False)
    assert_all_serve(fleet, 200, 2 * TTL + MARGIN, "sql update off")


def test_redis_down_changes_nothing_visitors_see(fleet: Fleet) -> None:
    assert_all_serve(fleet, 200, 2 * TTL + MARGIN, "start")
    down = {server.name: server.log().count(WARNING_DOWN) for server in fleet.servers}
    back = {server.name: server.log().count(WARNING_BACK) for server in fleet.servers}
    fleet.redis.close()
    try:
        assert set(poll(fleet.servers, 2 * TTL)) == {200}
        manage("setmaintenance", "on", env=fleet.env)  # its publish fails too: each process reads the database
        assert_all_serve(fleet, 503, TTL + MARGIN, "on, Redis down")
        manage("setmaintenance", "off", env=fleet.env)
        assert_all_serve(fleet, 200, TTL + MARGIN, "off, Redis down")
        assert set(poll(fleet.servers, 2 * TTL)) == {200}
    finally:
        fleet.redis.open()
    for server in fleet.servers:  # one warning per process for the whole outage
        assert server.log().count(WARNING_DOWN) == down[server.name] + 1, server.log()[-3000:]

    def recovered() -> bool:
        poll(fleet.servers, 0.1)  # requests drive each process's refresh
        return all(server.log().count(WARNING_BACK) == back[server.name] + 1 for server in fleet.servers)

    wait_until(recovered, 2 * TTL + MARGIN, what="every process using Redis again")
    wait_until(lambda: shared_record(fleet.keys) is not None, 2 * TTL + MARGIN, what="the copy shared again")
    manage("setmaintenance", "on", env=fleet.env)
    assert_all_serve(fleet, 503, TTL + MARGIN, "on, Redis back")
    manage("setmaintenance", "off", env=fleet.env)
    assert_all_serve(fleet, 200, TTL + MARGIN, "off, Redis back")


def test_garbage_in_the_key_changes_nothing_visitors_see(fleet: Fleet) -> None:
    assert_all_serve(fleet, 200, 2 * TTL + MARGIN, "start")
    fleet.keys.write_raw(b"\x00garbage")
    assert set(poll(fleet.servers, 2 * TTL)) == {200}
    # Rewritten by the process that wins the lease next (with a warning), or already by one whose
    # refresh was under way when the garbage came.
    wait_until(lambda: shared_record(fleet.keys) is not None, 2 * TTL + MARGIN, what="the key rewritten")
    manage("setmaintenance", "on", env=fleet.env)
    assert_all_serve(fleet, 503, TTL + MARGIN, "on")
    fleet.keys.write_raw(pickle.dumps(("not", "a", "record", b"")))
    assert set(poll(fleet.servers, 2 * TTL)) == {503}
    manage("setmaintenance", "off", env=fleet.env)
    assert_all_serve(fleet, 200, TTL + MARGIN, "off")
