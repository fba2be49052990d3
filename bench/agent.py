"""A site process of the load harness (started by harness.Agent in its kind's venv): one JSON command per
line on stdin, one JSON answer each on stdout. At start it migrates, adds a staff user, turns maintenance
off and answers its Django version and, for maintenance_flags, which 503 page it serves. Ops: ``time`` (CPU
µs per request through ``WSGIHandler``/``ASGIHandler`` called with a prepared environ/scope), ``queries``,
``middleware`` (ours alone), ``in_stack`` (paired batches), ``refresh`` (wall µs of requests that start a
refresh, and of a refresh made by the caller), ``commands`` (management commands on a timer, answering
``time.monotonic()`` when each started and returned: one clock for every process)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import io
import itertools
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

from django.core.management import call_command

ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# Each kind's own command, completed with on/off (the baseline has none).
COMMANDS = {"mf": ["setmaintenance"], "waffle": ["waffle_switch", "maintenance_mode"], "mm": ["maintenance_mode"],
            "mm2": ["setmaintenance"]}  # fmt: skip
ENVIRON = {
    "REQUEST_METHOD": "GET", "PATH_INFO": "/", "SCRIPT_NAME": "", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
    "HTTP_ACCEPT": ACCEPT, "HTTP_ACCEPT_LANGUAGE": "en", "HTTP_USER_AGENT": "bench", "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    "wsgi.version": (1, 0),
}  # fmt: skip
SCOPE = {
    "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/async/", "raw_path": b"/async/", "query_string": b"", "root_path": "",
    "headers": [(b"host", b"127.0.0.1"), (b"accept", ACCEPT.encode()), (b"accept-language", b"en"),
                (b"user-agent", b"bench")],
    "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
}  # fmt: skip


def main() -> None:
    out, sys.stdout = sys.stdout, sys.stderr  # keep the protocol channel clean
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sites.models import Site
    from django.test import Client

    kind = getattr(settings, "KIND", "mf")  # testproject: maintenance_flags
    command("migrate", "--noinput")
    users = get_user_model().objects
    user = users.filter(username="bench-staff").first() or users.create_user("bench-staff", "", "bench", is_staff=True)
    if kind == "waffle":
        command("waffle_switch", "maintenance_mode", "off", "--create")
    if os.environ.get("BENCH_EXTRA_SITE"):  # a second Site, kept in maintenance (throughput "on")
        Site.objects.get_or_create(pk=2, defaults={"domain": "site2.example", "name": "site 2"})
        command("setmaintenance", "on", "2")
    client, site = Client(), SiteProcess(kind)
    client.force_login(user)
    site.cookies["staff"] = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    hello: dict[str, Any] = {"django": django.get_version(), "pid": os.getpid()}
    if hasattr(settings, "KIND") and site.kind == "mf":  # benchsite: which 503 page this setup serves
        site.apply({"on": True})  # the project page carries a generator meta tag
        hello["builtin_page"] = b'content="benchsite"' not in Client().get("/", HTTP_ACCEPT=ACCEPT).content
        hello["page_reused"] = bool(getattr(settings, "MAINTENANCE_503_PRERENDER", False) or hello["builtin_page"])
    site.apply({"on": False})
    for reply in itertools.chain([hello], map(json.loads, sys.stdin)):
        if "op" in reply:
            try:
                reply = site.handle(reply)
            except Exception as exc:  # report, keep serving
                traceback.print_exc()
                reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def command(*argv: str) -> float:
    """Run a management command in this process; ``time.monotonic()`` when it returned (and committed)."""
    call_command(*argv, stdout=io.StringIO(), stderr=io.StringIO())
    return time.monotonic()


@contextlib.contextmanager
def count_queries() -> Iterator[list[str]]:
    """Every query on every connection and thread (ASGI runs sync code in other threads)."""
    from django.db.backends.utils import CursorWrapper

    sql: list[str] = []
    saved = {name: getattr(CursorWrapper, name) for name in ("execute", "executemany")}

    def counting(original: Any) -> Any:
        def wrapper(cursor: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            sql.append(str(query))  # list.append is atomic
            return original(cursor, query, *args, **kwargs)

        return wrapper

    for name, original in saved.items():
        setattr(CursorWrapper, name, counting(original))
    try:
        yield sql
    finally:
        for name, original in saved.items():
            setattr(CursorWrapper, name, original)


def pass_through(get_response: Any) -> Any:
    """An empty middleware: the cost of any middleware in Django's chain."""
    return lambda request: get_response(request)


async def receive_once(pending: list[dict[str, Any]]) -> dict[str, Any]:
    if pending:
        return pending.pop()
    await asyncio.Event().wait()  # the client never disconnects
    raise AssertionError


class SiteProcess:
    def __init__(self, kind: str) -> None:
        from django.core.handlers.asgi import ASGIHandler
        from django.core.handlers.wsgi import WSGIHandler

        self.kind, self.wsgi, self.asgi, self.status = kind, WSGIHandler(), ASGIHandler(), 0
        self.cookies, self.on, self.ignored = {"anon": ""}, None, 0

    def apply(self, state: dict[str, Any]) -> None:
        """Put the site in ``state`` (only what changed) with each app's own command and public models."""
        if self.kind in COMMANDS and self.on != bool(state.get("on")):
            self.on = bool(state.get("on"))
            command(*COMMANDS[self.kind], "on" if self.on else "off")  # ours also forgets this process's memo
        if self.kind == "mf" and self.ignored != int(state.get("ignored", 0)):
            from django.conf import settings
            from django.contrib.sites.models import Site

            from maintenance_flags.models import IgnoredURL

            for row in IgnoredURL.objects.all():
                row.delete()
            self.ignored, site = int(state.get("ignored", 0)), Site.objects.get(pk=settings.SITE_ID)
            for i in range(self.ignored):  # none matches the benchmark's paths; half are site-scoped
                IgnoredURL.objects.create(pattern=f"^section-{i}/(detail|list)/[0-9]+/$", site=site if i % 2 else None)

    def wsgi_batch(self, user: str, n: int) -> float:
        base = {**ENVIRON, "HTTP_COOKIE": self.cookies[user]} if self.cookies[user] else ENVIRON
        statuses = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            statuses.append(status)

        start = time.process_time()
        for _ in range(n):
            response = self.wsgi({**base, "wsgi.input": io.BytesIO(b"")}, start_response)
            b"".join(response)
            response.close()
        elapsed = time.process_time() - start
        self.status = int(statuses[-1].split()[0])
        return elapsed

    def asgi_batch(self, user: str, n: int) -> float:
        cookie = [(b"cookie", self.cookies[user].encode())] if self.cookies[user] else []
        scope, request = {**SCOPE, "headers": SCOPE["headers"] + cookie}, {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = int(message["status"])

        async def batch() -> float:
            start = time.process_time()
            for _ in range(n):
                await self.asgi(dict(scope), functools.partial(receive_once, [request]), send)
            return time.process_time() - start

        return asyncio.run(batch())

    def batch(self, server: str, user: str, n: int) -> float:
        return self.wsgi_batch(user, n) if server == "wsgi" else self.asgi_batch(user, n)

    def middleware_alone(self, n: int) -> float:
        """CPU µs per call of maintenance_flags' middleware alone (a stub view, anonymous requests)."""
        from django.contrib.auth.models import AnonymousUser
        from django.http import HttpResponse
        from django.test import RequestFactory

        from maintenance_flags.middleware import MaintenanceModeMiddleware

        response = HttpResponse("ok")
        middleware = MaintenanceModeMiddleware(lambda request: response)
        requests = [RequestFactory().get("/", HTTP_ACCEPT=ACCEPT) for _ in range(n)]
        for request in requests:
            request.user = AnonymousUser()
        middleware(requests[0])  # state refresh
        gc.collect()
        start = time.process_time()
        for request in requests:
            middleware(request)
        return (time.process_time() - start) / n * 1e6

    def in_stack(self, n: int, pairs: int) -> dict[str, list[float]]:
        """Three handlers differing only in the last middleware: none ("bare"), an empty one and ours;
        batches alternate; per-pair differences from "bare" (µs per request), and "bare" itself."""
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIHandler
        from django.test import override_settings

        others = [m for m in settings.MIDDLEWARE if m != "maintenance_flags.middleware.MaintenanceModeMiddleware"]
        handlers = {"ours": WSGIHandler()}
        with override_settings(MIDDLEWARE=others):
            handlers["bare"] = WSGIHandler()
        with override_settings(MIDDLEWARE=[*others, "agent.pass_through"]):
            handlers["empty"] = WSGIHandler()
        saved, diffs = self.wsgi, {"ours": [], "empty": [], "bare": []}
        try:
            for _ in range(pairs):
                us = {}
                for name, handler in handlers.items():
                    self.wsgi = handler
                    self.wsgi_batch("anon", max(5, n // 20))
                    gc.collect()
                    us[name] = self.wsgi_batch("anon", n) / n * 1e6
                diffs["bare"].append(us["bare"])
                for name in ("ours", "empty"):
                    diffs[name].append(us[name] - us["bare"])
        finally:
            self.wsgi = saved
        return diffs

    def refresh_cost(self, n: int) -> dict[str, list[float]]:
        """Wall µs of a WSGI request past the TTL (it starts the background refresh), of one with a fresh
        memo, and of a request that makes the refresh itself (``store.current()`` past the TTL, then the
        request: what such a request paid in 1.0, and what a process's first read pays). Each sample waits
        for the previous refresh."""
        from maintenance_flags.conf import conf
        from maintenance_flags.store import store

        ttl = conf.MAINTENANCE_STATE_TTL

        def one_request() -> float:
            start = time.perf_counter()
            response = self.wsgi({**ENVIRON, "wsgi.input": io.BytesIO(b"")}, lambda status, headers, exc=None: None)
            b"".join(response)
            response.close()
            return (time.perf_counter() - start) * 1e6

        def refreshed() -> None:
            deadline = time.monotonic() + 5
            while store.fresh() is None and time.monotonic() < deadline:
                time.sleep(0.001)

        self.wsgi_batch("anon", 20)
        samples: dict[str, list[float]] = {"fresh": [], "triggering": [], "in_caller": []}
        for _ in range(n):
            refreshed()
            samples["fresh"].append(one_request())
            time.sleep(ttl * 1.1)  # the memo is now older than the TTL
            samples["triggering"].append(one_request())
            refreshed()
            time.sleep(ttl * 1.1)
            start = time.perf_counter()
            store.current()  # the refresh, in the caller: then the request finds the state fresh
            samples["in_caller"].append((time.perf_counter() - start) * 1e6 + one_request())
        return samples

    def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op, n = cmd["op"], int(cmd["n"]) if "n" in cmd else 0
        if op == "commands":  # alternate them, count times, every interval s
            times, next_at = [], time.monotonic()
            for i in range(int(cmd["count"])):
                times.append([time.monotonic(), command(*cmd["argv"][i % len(cmd["argv"])])])
                next_at += float(cmd["interval"])
                time.sleep(max(0.0, next_at - time.monotonic()))
            return {"times": times}
        self.apply(cmd.get("state", {}))
        if op == "middleware":
            return {"us": self.middleware_alone(n)}
        if op == "in_stack":
            return self.in_stack(n, int(cmd["pairs"]))
        if op == "refresh":
            return self.refresh_cost(n)
        server, user = cmd["server"], cmd["user"]
        self.batch(server, user, int(cmd.get("warmup", 50)))  # state refresh, caches, connections
        if op == "time":
            gc.collect()
            return {"us": self.batch(server, user, n) / n * 1e6, "status": self.status}
        if op == "queries":
            with count_queries() as sql:
                self.batch(server, user, n)
            app = [q for q in sql if "django_session" not in q and "auth_user" not in q]
            return {"queries": len(sql) / n, "app_queries": len(app) / n, "status": self.status}
        raise ValueError(f"unknown op {op!r}")


if __name__ == "__main__":
    main()
