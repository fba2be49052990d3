"""Faults with real services: database unreachable, Redis unreachable, Site row gone, tables missing.

Every scenario runs real server processes; the database is cut for real (a closed port and
cut connections through :class:`tests.servers.TcpProxy`, or for SQLite a path that stops
existing), never mocked. For each: what the visitor gets, what is logged, and recovery.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from django.contrib.sites.models import Site
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from maintenance_flags.names import ALL_SITES_SWITCH, site_switch_name, switch_model
from tests.servers import (
    OK_AND_MAINTENANCE,
    DatabaseLink,
    Server,
    TcpProxy,
    converge,
    db_env,
    manage,
    report_figure,
    running,
)

pytestmark = [pytest.mark.servers, pytest.mark.django_db(transaction=True)]

TTL = 1.0
MARGIN = 2.0
STATE_UNREADABLE = "Could not read the maintenance state"
# Django logs 5xx responses on django.request (printed while DEBUG): neither may appear.
SERVER_ERROR = "Internal Server Error"
LOGGED_503 = "Service Unavailable:"


def switch(name: str, active: bool) -> None:
    """A write through waffle's public API, from the test process (its own database connection)."""
    model = switch_model()
    row = model.objects.filter(name=name).first() or model(name=name)
    row.active = active
    row.save()


def hold(server: Server, path: str, expected: int, seconds: float, **kwargs: str) -> int:
    """Poll for ``seconds``: every answer must be ``expected``. Returns how many answers were seen."""
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        reply = server.get(path, **kwargs)  # type: ignore[arg-type]
        assert reply.status == expected, (server.name, path, reply.status, reply.body[:300])
        count += 1
        time.sleep(0.05)
    return count


def assert_clean_log(*servers: Server) -> None:
    for server in servers:
        log = server.log()
        assert SERVER_ERROR not in log, log[-4000:]
        assert LOGGED_503 not in log, log[-4000:]


@pytest.fixture
def link() -> Iterator[DatabaseLink]:
    db_link = DatabaseLink(connection.settings_dict)
    yield db_link
    db_link.stop()


# --- database unreachable ------------------------------------------------------------------------


def test_database_unreachable_at_start_up_and_mid_traffic(link: DatabaseLink) -> None:
    env = {**link.env(), "MF_STATE_TTL": str(TTL)}
    closed = Server(
        "gunicorn",
        {**env, "MF_FAIL_MODE": "closed"},
        settings={"MAINTENANCE_ADMIN_IGNORED_URLS": ["^admin", "^async/"], "MAINTENANCE_ALLOWED_IPS": ["127.0.0.2"]},
        name="closed",
    )
    opened = Server("uvicorn", {**env, "MF_FAIL_MODE": "open"}, name="open")
    with running(closed, opened):
        # 1. Never read the state (database down since start-up): MAINTENANCE_FAIL_MODE decides.
        page = closed.get("/")
        assert page.status == 503
        assert page.headers["x-maintenance-mode"] == "on"
        assert "served from testproject/templates/503.html" in page.body
        assert closed.get("/", headers={"Accept": "application/json"}).status == 503
        # Exemptions still apply in fail-closed mode: ignored URL, allowed IP; a spoofed header does not.
        assert closed.get("/async/").body == "async ok"
        assert closed.get("/", source="127.0.0.2").status == 200
        assert closed.get("/", headers={"X-Forwarded-For": "127.0.0.2"}).status == 503
        # A session cookie: the user cannot be loaded, so the visitor is anonymous (503, not 500).
        assert closed.get("/", headers={"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"}).status == 503
        assert opened.get("/async/").body == "async ok"
        assert opened.get("/").status == 200  # the view itself needs no database
        assert STATE_UNREADABLE in closed.log()
        assert STATE_UNREADABLE in opened.log()

        # 2. The database comes back: both servers read the state (off) by themselves.
        link.open()
        converge((closed, opened), 200, TTL + MARGIN)

        # 3. Maintenance on, then the database goes away mid-traffic: the last known state holds,
        #    even on the fail-open server.
        switch(site_switch_name(1), True)
        converge((closed, opened), 503, TTL + MARGIN)
        link.close()
        cut = time.monotonic()
        # A change the servers cannot see while the database is away.
        switch(site_switch_name(1), False)
        for server in (closed, opened):
            hold(server, "/", 503, seconds=max(0.0, cut + 2.5 * TTL - time.monotonic()))
        assert closed.get("/async/").body == "async ok"

        # 4. The database returns: the servers recover by themselves and see the change.
        link.open()
        back = time.monotonic()
        result = converge((closed, opened), 200, TTL + MARGIN, since=back)
        report_figure("faults", "recovery after database returns (s)", round(max(result.elapsed.values()), 3))
        for statuses in result.seen.values():
            assert set(statuses) <= OK_AND_MAINTENANCE
    assert_clean_log(closed, opened)
    assert "can be read again" in closed.log()


# --- Redis (waffle's cache) unreachable ---------------------------------------------------------


@pytest.fixture
def dead_redis() -> Iterator[dict[str, str]]:
    """Env for processes whose waffle cache is on a Redis that refuses connections."""
    proxy = TcpProxy(6379)  # never opened: a closed port
    yield {
        "MF_WAFFLE_CACHE": "redis",
        "MF_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
        "MF_REDIS_PREFIX": f"mf-test-{uuid.uuid4().hex}",
    }
    proxy.close()


def test_state_reads_do_not_depend_on_waffles_cache(dead_redis: dict[str, str]) -> None:
    env = {**db_env(connection.settings_dict), "MF_STATE_TTL": str(TTL), **dead_redis}
    server = Server("gunicorn", env, name="redis-down")
    with running(server):
        assert server.get("/").status == 200
        switch(site_switch_name(1), True)  # the test process's own waffle cache
        converge((server,), 503, TTL + MARGIN)
        switch(site_switch_name(1), False)
        converge((server,), 200, TTL + MARGIN)
    assert_clean_log(server)
    assert STATE_UNREADABLE not in server.log()


def test_setmaintenance_works_while_waffles_cache_is_down(dead_redis: dict[str, str]) -> None:
    """Maintenance is often needed when infrastructure is failing: the command must still work.

    waffle flushes its cache after the row is committed; with Redis down that raises. The
    switch is changed either way; the command must say so and exit 0, not die with a traceback.
    """
    env = {**db_env(connection.settings_dict), **dead_redis}
    result = manage("setmaintenance", "on", env=env)
    assert "1 example.com on (site switch)" in result.stdout
    assert switch_model().objects.get(name=site_switch_name(1)).active


def test_setmaintenance_in_process_while_waffles_cache_is_down(
    dead_redis: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The same, in this process (so coverage sees the handling): a WARNING, not a traceback."""
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "waffle": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": dead_redis["MF_REDIS_URL"]},
    }
    out = io.StringIO()
    with override_settings(CACHES=caches, WAFFLE_CACHE_NAME="waffle"), caplog.at_level("WARNING"):
        call_command("setmaintenance", "on", stdout=out)
    assert switch_model().objects.get(name=site_switch_name(1)).active
    assert any(r.name == "maintenance_flags" and r.levelname == "WARNING" for r in caplog.records)


# --- the Site row disappears ----------------------------------------------------------------------


def test_site_row_deleted_while_in_maintenance() -> None:
    env = {**db_env(connection.settings_dict), "MF_STATE_TTL": str(TTL)}
    server = Server("gunicorn", env, name="site-deleted")
    with running(server):
        switch(site_switch_name(1), True)
        converge((server,), 503, TTL + MARGIN)
        # Deleted while in maintenance: its switch goes with it, so the site reopens.
        Site.objects.get(pk=1).delete()
        assert not switch_model().objects.filter(name=site_switch_name(1)).exists()
        converge((server,), 200, TTL + MARGIN)
        # SITE_ID 1 names no Site, yet its switch is on again (e.g. `waffle_switch --create`):
        # maintenance applies and the page renders with site=None.
        switch(site_switch_name(1), True)
        converge((server,), 503, TTL + MARGIN)
        assert "This site is down for maintenance" in server.get("/").body
        assert server.get("/", headers={"Accept": "application/json"}).status == 503
        # The global switch alone covers a SITE_ID that names no Site.
        switch(site_switch_name(1), False)
        switch(ALL_SITES_SWITCH, True)
        hold(server, "/", 503, seconds=TTL + 0.5)
        switch(ALL_SITES_SWITCH, False)
        converge((server,), 200, TTL + MARGIN)
    assert_clean_log(server)


# --- migrations not run yet ---------------------------------------------------------------------


@pytest.fixture
def empty_database() -> Iterator[dict[str, str]]:
    """A database with no tables at all (``migrate`` never ran); dropped afterwards."""
    vendor = os.environ.get("MF_DB", "sqlite")
    name = f"mf_empty_{uuid.uuid4().hex[:10]}"
    if vendor == "sqlite":
        path = f"/tmp/{name}.sqlite3"
        yield {**db_env(connection.settings_dict), "MF_DB_NAME": path}
        for suffix in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        return
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
    yield {**db_env(connection.settings_dict), "MF_DB_NAME": name}
    force = " WITH (FORCE)" if vendor == "postgres" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE {connection.ops.quote_name(name)}{force}")


def test_installed_but_not_migrated_is_not_an_outage(empty_database: dict[str, str]) -> None:
    """The app added to a live site before ``migrate``: 1.0 served every page a 503 (fail-closed) and
    logged a traceback every TTL. Now nothing is in maintenance, one WARNING per process names
    ``migrate``, and the state is picked up after it with no restart."""
    env = {**empty_database, "MF_STATE_TTL": str(TTL)}
    closed = Server("gunicorn", {**env, "MF_FAIL_MODE": "closed"}, name="closed")
    opened = Server("uvicorn", {**env, "MF_FAIL_MODE": "open"}, name="open")
    with running(closed, opened):
        for server in (closed, opened):
            hold(server, "/", 200, 2 * TTL + 0.5)
            assert server.get("/async/").body == "async ok"
        # `migrate sites` alone (waffle's tables still missing) logs no traceback either.
        partial = manage("migrate", "sites", "--noinput", env=env, timeout=120)
        assert "Traceback" not in partial.stdout + partial.stderr
        assert "`manage.py migrate`" in partial.stderr
        hold(closed, "/", 200, TTL + 0.5)
        for server in (closed, opened):
            log = server.log()
            assert log.count("run `manage.py migrate`") == 1, log[-4000:]
            assert "Traceback" not in log, log[-4000:]
            assert STATE_UNREADABLE not in log
        manage("migrate", "--noinput", env=env, timeout=120)
        manage("setmaintenance", "on", env=env)
        converge((closed, opened), 503, TTL + MARGIN)
    assert_clean_log(closed, opened)
