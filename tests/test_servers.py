"""Two real server processes on the test database see a change made elsewhere within the TTL.

A gunicorn (WSGI) and a uvicorn (ASGI) process serve testproject on the same database as
the test; the change comes from a third process (``setmaintenance``, ``waffle_switch``) or
from a plain SQL ``UPDATE`` that no Django code sees. Runs on every database of the matrix,
with waffle's default local-memory cache and with waffle's cache on Redis.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.db import connection

from maintenance_flags.names import ALL_SITES_SWITCH, site_switch_name, switch_model
from tests.servers import OK_AND_MAINTENANCE, Server, converge, db_env, manage, report_figure, running

pytestmark = [pytest.mark.servers, pytest.mark.django_db(transaction=True)]

TTL = 1.0
# Polling, one request, and a loaded 2-core machine; the bound asserted is TTL + MARGIN.
MARGIN = 2.0
SWITCH = site_switch_name(1)


@dataclass
class Fleet:
    cache: str
    env: dict[str, str]
    servers: tuple[Server, ...]


@pytest.fixture(scope="module", params=["locmem", "redis"])
def fleet(request: pytest.FixtureRequest, django_db_setup: None) -> Iterator[Fleet]:
    env = {**db_env(connection.settings_dict), "MF_STATE_TTL": str(TTL)}
    prefix = f"mf-test-{uuid.uuid4().hex}"
    if request.param == "redis":
        env.update({"MF_WAFFLE_CACHE": "redis", "MF_REDIS_PREFIX": prefix})
    servers = (Server("gunicorn", env, name="gunicorn"), Server("uvicorn", env, name="uvicorn"))
    with running(*servers):
        yield Fleet(request.param, env, servers)
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def sql_update(name: str, active: bool) -> None:
    """Change the row behind Django's back: no signal, no cache invalidation."""
    table = connection.ops.quote_name(switch_model()._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET active = %s WHERE name = %s", [active, name])
        assert cursor.rowcount == 1


def word(on: bool) -> str:
    return "on" if on else "off"


def waffle_cached(env: dict[str, str]) -> str:
    """What waffle's own API says in a new process, which fills waffle's cache if it is empty."""
    code = f"import waffle; print(waffle.switch_is_active({SWITCH!r}))"
    return manage("shell", "--verbosity=0", "-c", code, env=env).stdout.strip()


# Each step: who writes, what, and the status every server must serve within TTL + MARGIN.
STEPS: list[tuple[str, Callable[[dict[str, str]], object], int]] = [
    ("setmaintenance on", lambda env: manage("setmaintenance", "on", env=env), 503),
    ("setmaintenance off", lambda env: manage("setmaintenance", "off", env=env), 200),
    ("waffle_switch on", lambda env: manage("waffle_switch", SWITCH, "on", env=env), 503),
    ("sql update off", lambda env: sql_update(SWITCH, False), 200),
    ("sql update global on", lambda env: sql_update(ALL_SITES_SWITCH, True), 503),
    ("setmaintenance off --all", lambda env: manage("setmaintenance", "off", "--all", env=env), 200),
]


def check_replies(fleet: Fleet, expected: int) -> None:
    for server in fleet.servers:
        for path in ("/", "/async/"):
            reply = server.get(path)
            assert reply.status == expected, (server.name, path, reply.status)
            if expected == 503:
                assert reply.headers["x-maintenance-mode"] == "on"
                assert reply.headers["retry-after"] == "3600"
                assert reply.headers["cache-control"] == "no-store"
                assert "served from testproject/templates/503.html" in reply.body
            else:
                assert "x-maintenance-mode" not in reply.headers
        if expected == 503:
            problem = server.get("/", headers={"Accept": "application/json"})
            assert problem.status == 503
            assert problem.headers["content-type"] == "application/problem+json"
            assert server.get("/admin/login/").status == 200  # MAINTENANCE_ADMIN_IGNORED_URLS


def test_changes_from_other_processes_reach_every_server_within_ttl(fleet: Fleet) -> None:
    converge(fleet.servers, 200, TTL + MARGIN)  # the state the database starts with
    for label, write, expected in STEPS:
        if label == "sql update off" and fleet.cache == "redis":
            # Fill waffle's Redis cache with "on": an UPDATE will leave it stale.
            assert waffle_cached(fleet.env) == "True"
        write(fleet.env)
        written = time.monotonic()
        result = converge(fleet.servers, expected, TTL + MARGIN, since=written)
        for name, statuses in result.seen.items():
            assert set(statuses) <= OK_AND_MAINTENANCE, (label, name, statuses)
        lag = max(result.elapsed.values())
        report_figure(f"servers[{fleet.cache}]", label, round(lag, 3))
        assert lag <= TTL + MARGIN, label
        check_replies(fleet, expected)
        if label == "sql update off" and fleet.cache == "redis":
            # waffle's API is still stale in other processes; the servers were not fooled.
            assert waffle_cached(fleet.env) == "True"
