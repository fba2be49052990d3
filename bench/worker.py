"""One benchmark worker process: a Django site of one kind, timed in-process.

Started by ``bench/run.py`` with the venv of its kind (the peers live in their own venvs),
``DJANGO_SETTINGS_MODULE=benchsite.settings`` and ``BENCH_KIND``. It reads JSON commands on stdin
and answers one JSON line each on stdout (everything else printed goes to stderr):

``{"op": "time", "state": {...}, "server": "wsgi"|"asgi", "user": "anon"|"staff", "n": N}``
    -> ``{"us": microseconds per request, "n": N, "status": last status}``
``{"op": "queries", "state": ..., "server": ..., "user": ..., "n": N}``
    -> ``{"queries": per request, "app_queries": per request, excluding session/user loads}``
``{"op": "profile", ...same as time..., "top": 25}`` -> ``{"profile": "cProfile text"}``
``{"op": "middleware", "state": ..., "n": N}`` -> ``{"us": ...}``: maintenance_flags' middleware alone
``{"op": "in_stack", "state": ..., "n": N, "pairs": P}`` -> ``{"ours": [...], "empty": [...], "bare": [...]}``:
µs that maintenance_flags' middleware / an empty middleware add to a whole WSGI request (paired differences),
and the request without either

The first line it writes is ``{"ready": true, "django": version, "pid": ...}``, plus, for maintenance_flags,
``"builtin_page"``: whether the 503 page is the built-in template (``responses.is_builtin``), and
``"page_reused"``: whether one rendering serves every visitor (built-in, or ``MAINTENANCE_503_PRERENDER``).

Times are CPU time of the whole process (all threads: ASGI hops to worker threads), which is
what a request costs the server and is far less disturbed by other load on the machine than
wall-clock time (also reported, as ``wall_us``).

Requests are made by calling Django's ``WSGIHandler`` / ``ASGIHandler`` directly with a prepared
environ / scope: no sockets, so what is measured is the whole Django stack and nothing else.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import sys
import threading
import time
from typing import Any

ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # keep the protocol channel clean
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
    import django

    django.setup()
    from benchsite import control
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler

    control.prepare_database()
    cookies = {"anon": "", "staff": control.staff_cookie()}
    runner = Runner(WSGIHandler(), ASGIHandler(), cookies)
    hello: dict[str, Any] = {"ready": True, "django": django.get_version(), "pid": os.getpid()}
    if control.KIND == "mf":  # which 503 page this setup serves (the built-in one is memoised)
        from django.template.loader import select_template

        from maintenance_flags.conf import conf
        from maintenance_flags.responses import is_builtin, template_names

        hello["builtin_page"] = is_builtin(select_template(template_names()))
        hello["page_reused"] = conf.MAINTENANCE_503_PRERENDER or hello["builtin_page"]
    out.write(json.dumps(hello) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            control.apply_state(cmd.get("state", {}))
            reply = runner.run(cmd)
        except Exception as exc:  # report, keep serving
            import traceback

            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


class QueryCounter:
    """Counts queries on every connection and thread by wrapping Django's cursor class."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self._lock = threading.Lock()
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> QueryCounter:
        from django.db.backends import utils

        counter = self
        for name in ("execute", "executemany"):
            original = getattr(utils.CursorWrapper, name)
            self._saved[name] = original

            def wrapper(cursor: Any, sql: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                with counter._lock:
                    counter.sql.append(str(sql))
                return _original(cursor, sql, *args, **kwargs)

            setattr(utils.CursorWrapper, name, wrapper)
        return self

    def __exit__(self, *exc: object) -> None:
        from django.db.backends import utils

        for name, original in self._saved.items():
            setattr(utils.CursorWrapper, name, original)


class PassThrough:
    """An empty middleware: the cost of any middleware in Django's chain."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)


class Runner:
    def __init__(self, wsgi: Any, asgi: Any, cookies: dict[str, str]) -> None:
        self.wsgi = wsgi
        self.asgi = asgi
        self.cookies = cookies
        self.status = 0

    # --- one request ------------------------------------------------------------------------
    def environ(self, user: str) -> dict[str, Any]:
        env = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_ACCEPT": ACCEPT,
            "HTTP_ACCEPT_LANGUAGE": "en",
            "HTTP_USER_AGENT": "bench",
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        if self.cookies[user]:
            env["HTTP_COOKIE"] = self.cookies[user]
        return env

    def scope(self, user: str) -> dict[str, Any]:
        headers = [
            (b"host", b"127.0.0.1"),
            (b"accept", ACCEPT.encode()),
            (b"accept-language", b"en"),
            (b"user-agent", b"bench"),
        ]
        if self.cookies[user]:
            headers.append((b"cookie", self.cookies[user].encode()))
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/async/",
            "raw_path": b"/async/",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }

    def wsgi_batch(self, user: str, n: int) -> float:
        base = self.environ(user)
        handler = self.wsgi
        statuses: list[str] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(status)
            return None

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
        scope = self.scope(user)
        handler = self.asgi
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
                    raise AssertionError  # pragma: no cover

                await handler(dict(scope), receive, send)
            return time.process_time() - start

        elapsed = asyncio.run(batch())
        self.status = int(last["status"])
        return elapsed

    def batch(self, server: str, user: str, n: int) -> float:
        return self.wsgi_batch(user, n) if server == "wsgi" else self.asgi_batch(user, n)

    # --- commands ---------------------------------------------------------------------------
    def middleware_alone(self, n: int) -> float:
        """CPU µs per call of maintenance_flags' middleware alone (a stub view, anonymous requests)."""
        from django.contrib.auth.models import AnonymousUser
        from django.http import HttpResponse
        from django.test import RequestFactory

        from maintenance_flags.middleware import MaintenanceModeMiddleware

        response = HttpResponse("ok")
        middleware = MaintenanceModeMiddleware(lambda request: response)
        factory = RequestFactory()
        requests = [factory.get("/", HTTP_ACCEPT=ACCEPT) for _ in range(n)]
        for request in requests:
            request.user = AnonymousUser()
        middleware(requests[0])  # state refresh
        gc.collect()
        start = time.process_time()
        for request in requests:
            middleware(request)
        return (time.process_time() - start) / n * 1e6

    def in_stack(self, n: int, pairs: int) -> dict[str, list[float]]:
        """What maintenance_flags' middleware adds to a whole WSGI request, measured precisely.

        Three handlers in this process, differing only in the last middleware: none ("bare"), an
        empty pass-through one ("empty": what any middleware costs Django) and maintenance_flags.
        Batches alternate; the figures are per-pair differences from "bare" (µs per request).
        """
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIHandler
        from django.test import override_settings

        ours = "maintenance_flags.middleware.MaintenanceModeMiddleware"
        others = [m for m in settings.MIDDLEWARE if m != ours]
        handlers = {"ours": WSGIHandler()}
        with override_settings(MIDDLEWARE=others):
            handlers["bare"] = WSGIHandler()
        with override_settings(MIDDLEWARE=[*others, "worker.PassThrough"]):
            handlers["empty"] = WSGIHandler()
        saved = self.wsgi
        diffs: dict[str, list[float]] = {"ours": [], "empty": [], "bare": []}
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
            return self.in_stack(int(cmd["n"]), int(cmd.get("pairs", 3)))
        server, user, n = cmd["server"], cmd["user"], int(cmd["n"])
        self.batch(server, user, int(cmd.get("warmup", 50)))  # state refresh, caches, connections
        if cmd["op"] == "time":
            gc.collect()
            wall = time.perf_counter()
            elapsed = self.batch(server, user, n)
            wall = time.perf_counter() - wall
            return {"us": elapsed / n * 1e6, "wall_us": wall / n * 1e6, "n": n, "status": self.status}
        if cmd["op"] == "queries":
            with QueryCounter() as counter:
                self.batch(server, user, n)
            app = [q for q in counter.sql if "django_session" not in q and "auth_user" not in q]
            return {
                "queries": len(counter.sql) / n,
                "app_queries": len(app) / n,
                "status": self.status,
                "sample": sorted(set(counter.sql))[:5],
            }
        if cmd["op"] == "profile":
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            self.batch(server, user, n)
            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats(cmd.get("sort", "cumulative")).print_stats(
                int(cmd.get("top", 30))
            )
            return {"profile": text.getvalue(), "status": self.status}
        raise ValueError(f"unknown op {cmd['op']!r}")


if __name__ == "__main__":
    main()
