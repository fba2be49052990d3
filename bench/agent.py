"""A site process of the load harness (bench/harness.py starts it in its kind's venv): JSON commands on stdin,
one JSON answer each on stdout. At start it migrates, adds a staff user, turns maintenance off and answers
its Django version and, for maintenance_flags, whether its 503 is the built-in page (the project page
carries a ``generator`` meta tag) and whether one rendering serves every visitor.

Ops: ``time`` (CPU µs per request through ``WSGIHandler``/``ASGIHandler`` called with a prepared
environ/scope), ``queries``, ``middleware`` (ours alone), ``in_stack`` (paired batches: what ours and an
empty middleware add to a whole WSGI request), ``commands`` (management commands alternated on a timer;
answers when each started and returned, by ``time.monotonic()``: one clock for every process).
"""

from __future__ import annotations

import asyncio
import contextlib
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


def main() -> None:
    out, sys.stdout = sys.stdout, sys.stderr  # keep the protocol channel clean
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sites.models import Site
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import Client

    kind = getattr(settings, "KIND", "mf")  # testproject: maintenance_flags
    command("migrate", "--noinput")
    user = get_user_model().objects.filter(username="bench-staff").first()
    user = user or get_user_model().objects.create_user("bench-staff", password="bench", is_staff=True)
    if kind == "waffle":
        command("waffle_switch", "maintenance_mode", "off", "--create")
    if os.environ.get("BENCH_EXTRA_SITE"):  # a second Site, kept in maintenance (throughput "on")
        Site.objects.get_or_create(pk=2, defaults={"domain": "site2.example", "name": "site 2"})
        command("setmaintenance", "on", "2")
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    runner, current = Runner(WSGIHandler(), ASGIHandler(), {"anon": "", "staff": cookie}), {"on": None, "ignored": 0}
    hello: dict[str, Any] = {"django": django.get_version(), "pid": os.getpid()}
    if hasattr(settings, "KIND") and kind == "mf":  # benchsite: which 503 page this setup serves
        apply(kind, {"on": True}, current)
        hello["builtin_page"] = b'content="benchsite"' not in Client().get("/", HTTP_ACCEPT=ACCEPT).content
        hello["page_reused"] = bool(getattr(settings, "MAINTENANCE_503_PRERENDER", False) or hello["builtin_page"])
    apply(kind, {"on": False}, current)
    for reply in itertools.chain([hello], map(json.loads, sys.stdin)):
        if "op" in reply:
            cmd = reply
            try:
                if cmd["op"] == "commands":  # alternate them, count times, every interval s
                    times, next_at = [], time.monotonic()
                    for i in range(int(cmd["count"])):
                        times.append([time.monotonic(), command(*cmd["argv"][i % len(cmd["argv"])])])
                        next_at += float(cmd["interval"])
                        time.sleep(max(0.0, next_at - time.monotonic()))
                    reply = {"times": times}
                else:
                    apply(kind, cmd.get("state", {}), current)
                    reply = runner.run(cmd)
            except Exception as exc:  # report, keep serving
                traceback.print_exc()
                reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def command(*argv: str) -> float:
    """Run a management command in this process; ``time.monotonic()`` when it returned (and committed)."""
    call_command(*argv, stdout=io.StringIO(), stderr=io.StringIO())
    return time.monotonic()


def apply(kind: str, state: dict[str, Any], current: dict[str, Any]) -> None:
    """Put the site in ``state`` (only what changed) with each app's own command and public models."""
    if kind in COMMANDS and current["on"] != bool(state.get("on")):
        current["on"] = bool(state.get("on"))
        command(*COMMANDS[kind], "on" if current["on"] else "off")  # ours also forgets this process's memo
    if kind == "mf" and current["ignored"] != int(state.get("ignored", 0)):
        from django.conf import settings
        from django.contrib.sites.models import Site

        from maintenance_flags.models import IgnoredURL

        for row in IgnoredURL.objects.all():
            row.delete()
        current["ignored"], site = int(state.get("ignored", 0)), Site.objects.get(pk=settings.SITE_ID)
        for i in range(current["ignored"]):  # none matches the benchmark's paths; half are site-scoped
            IgnoredURL.objects.create(pattern=f"^section-{i}/(detail|list)/[0-9]+/$", site=site if i % 2 else None)


@contextlib.contextmanager
def count_queries() -> Iterator[list[str]]:
    """Every query on every connection and thread (ASGI runs sync code in other threads)."""
    from django.db.backends.utils import CursorWrapper

    sql: list[str] = []
    saved = {name: getattr(CursorWrapper, name) for name in ("execute", "executemany")}
    for name, original in saved.items():

        def wrapper(cursor: Any, query: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            sql.append(str(query))  # list.append is atomic
            return _original(cursor, query, *args, **kwargs)

        setattr(CursorWrapper, name, wrapper)
    try:
        yield sql
    finally:
        for name, original in saved.items():
            setattr(CursorWrapper, name, original)


def pass_through(get_response: Any) -> Any:
    """An empty middleware: the cost of any middleware in Django's chain."""
    return lambda request: get_response(request)


class Runner:
    def __init__(self, wsgi: Any, asgi: Any, cookies: dict[str, str]) -> None:
        self.wsgi, self.asgi, self.cookies, self.status = wsgi, asgi, cookies, 0

    def wsgi_batch(self, user: str, n: int) -> float:
        base = {
            "REQUEST_METHOD": "GET", "PATH_INFO": "/", "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1", "HTTP_ACCEPT": ACCEPT,
            "HTTP_ACCEPT_LANGUAGE": "en", "HTTP_USER_AGENT": "bench", "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
            "wsgi.run_once": False, "wsgi.version": (1, 0),
        }  # fmt: skip
        if self.cookies[user]:
            base["HTTP_COOKIE"] = self.cookies[user]
        handler, statuses = self.wsgi, []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            statuses.append(status)

        start = time.process_time()
        for _ in range(n):
            env = dict(base)
            env["wsgi.input"] = io.BytesIO(b"")
            response = handler(env, start_response)
            b"".join(response)
            response.close()
        elapsed = time.process_time() - start
        self.status = int(statuses[-1].split()[0])
        return elapsed

    def asgi_batch(self, user: str, n: int) -> float:
        headers = [(b"host", b"127.0.0.1"), (b"accept", ACCEPT.encode()), (b"accept-language", b"en"),
                   (b"user-agent", b"bench")]  # fmt: skip
        if self.cookies[user]:
            headers.append((b"cookie", self.cookies[user].encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": "/async/", "raw_path": b"/async/", "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        last: dict[str, Any] = {}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                last["status"] = message["status"]

        async def batch() -> float:
            start = time.process_time()
            for _ in range(n):
                sent = False

                async def receive() -> dict[str, Any]:
                    nonlocal sent
                    if not sent:
                        sent = True
                        return {"type": "http.request", "body": b"", "more_body": False}
                    await asyncio.Event().wait()  # the client never disconnects
                    raise AssertionError

                await self.asgi(dict(scope), receive, send)
            return time.process_time() - start

        elapsed = asyncio.run(batch())
        self.status = int(last["status"])
        return elapsed

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

        ours = "maintenance_flags.middleware.MaintenanceModeMiddleware"
        others = [m for m in settings.MIDDLEWARE if m != ours]
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

    def run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        if cmd["op"] == "middleware":
            return {"us": self.middleware_alone(int(cmd["n"]))}
        if cmd["op"] == "in_stack":
            return self.in_stack(int(cmd["n"]), int(cmd["pairs"]))
        server, user, n = cmd["server"], cmd["user"], int(cmd["n"])
        self.batch(server, user, int(cmd.get("warmup", 50)))  # state refresh, caches, connections
        if cmd["op"] == "time":
            gc.collect()
            return {"us": self.batch(server, user, n) / n * 1e6, "status": self.status}
        if cmd["op"] == "queries":
            with count_queries() as sql:
                self.batch(server, user, n)
            app = [q for q in sql if "django_session" not in q and "auth_user" not in q]
            return {"queries": len(sql) / n, "app_queries": len(app) / n, "status": self.status}
        raise ValueError(f"unknown op {cmd['op']!r}")


if __name__ == "__main__":
    main()
