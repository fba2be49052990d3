"""Real server processes, a breakable TCP proxy and polling helpers for the multi-process tests.

Everything binds to 127.0.0.1 on a free port, every wait is bounded, and every process
started here is stopped by its own process group id (never by name).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MANAGE = str(ROOT / "testproject" / "manage.py")
OK_AND_MAINTENANCE = frozenset({200, 503})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def db_env(settings_dict: Mapping[str, Any]) -> dict[str, str]:
    """The env that points a subprocess at the database described by ``settings_dict``."""
    env = {"MF_DB": os.environ.get("MF_DB", "sqlite"), "MF_DB_NAME": str(settings_dict["NAME"])}
    if settings_dict.get("HOST"):
        env["MF_DB_HOST"] = str(settings_dict["HOST"])
    if settings_dict.get("PORT"):
        env["MF_DB_PORT"] = str(settings_dict["PORT"])
    return env


def subprocess_env(
    env: Mapping[str, str], settings_module: str = "testproject.settings", path: str = ""
) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE_"))}
    full.update(env)
    full["DJANGO_SETTINGS_MODULE"] = settings_module
    full["PYTHONPATH"] = os.pathsep.join(p for p in (path, str(ROOT)) if p)
    full["PYTHONDONTWRITEBYTECODE"] = "1"
    return full


def settings_module(extra: Mapping[str, Any], directory: str, base: str = "testproject.settings") -> str:
    """Write a settings module: ``base`` (the demo's settings) plus ``extra`` (as Python literals)."""
    name = f"mf_srv_{uuid.uuid4().hex[:12]}"
    lines = [f"from {base} import *  # noqa: F403", *(f"{k} = {v!r}" for k, v in extra.items())]
    Path(directory, f"{name}.py").write_text("\n".join(lines) + "\n")
    return name


def manage(*args: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python testproject/manage.py ARGS`` in a separate process (raises on failure)."""
    result = subprocess.run(
        [sys.executable, MANAGE, *args],
        env=subprocess_env(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


# --- HTTP -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: str


def fetch(
    port: int,
    path: str,
    headers: Mapping[str, str] | None = None,
    source: str | None = None,
    timeout: float = 10,
) -> Reply:
    """One GET on 127.0.0.1:port, optionally from another loopback source address."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


def status_or_none(port: int, path: str, timeout: float = 5) -> int | None:
    try:
        return fetch(port, path, timeout=timeout).status
    except (OSError, http.client.HTTPException):
        return None


# --- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    """A gunicorn (WSGI) or uvicorn (ASGI) process serving testproject.

    The load harness (bench/) serves its own site with the same class: ``base`` is the settings
    module the generated one extends, ``app`` the WSGI/ASGI application, ``bin`` the virtualenv's
    ``bin`` holding gunicorn (each peer app has its own), ``path`` more PYTHONPATH, ``threads=1``
    gunicorn's plain sync worker.
    """

    kind: str  # "gunicorn" or "uvicorn"
    env: dict[str, str]
    settings: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    name: str = ""
    port: int = 0
    threads: int = 4
    base: str = "testproject.settings"
    app: str = ""
    bin: Path = BIN
    path: str = ""
    process: subprocess.Popen[bytes] | None = None
    _dir: tempfile.TemporaryDirectory[str] | None = None
    _last_log: str = ""

    def command(self) -> list[str]:
        if self.kind == "gunicorn":
            return [
                str(self.bin / "gunicorn"),
                self.app or "testproject.wsgi:application",
                f"--bind=127.0.0.1:{self.port}",
                f"--workers={self.workers}",
                f"--threads={self.threads}",
                "--timeout=60",
                "--graceful-timeout=2",
                "--log-level=warning",
            ]
        if self.kind == "uvicorn":
            return [
                str(self.bin / "uvicorn"),
                self.app or "testproject.asgi:application",
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--workers={self.workers}",
                "--lifespan=off",
                "--no-access-log",
                "--log-level=warning",
            ]
        raise ValueError(self.kind)

    @property
    def log_path(self) -> Path:
        assert self._dir is not None
        return Path(self._dir.name, "server.log")

    def start(self) -> Server:
        self._dir = tempfile.TemporaryDirectory(prefix="mf_server_")
        module = settings_module(self.settings, self._dir.name, self.base)
        self.port = free_port()
        self.name = self.name or f"{self.kind}:{self.port}"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=subprocess_env(self.env, module, os.pathsep.join(p for p in (self._dir.name, self.path) if p)),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 30) -> Server:
        """Wait until the server answers HTTP at all (any status)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.log()}")
            if status_or_none(self.port, "/async/", timeout=2) is not None:
                return self
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not answer within {timeout} s:\n{self.log()}")

    def get(self, path: str, headers: Mapping[str, str] | None = None, source: str | None = None) -> Reply:
        return fetch(self.port, path, headers, source)

    def status(self, path: str = "/") -> int | None:
        return status_or_none(self.port, path)

    def log(self) -> str:
        """Everything the server wrote (kept after it stopped)."""
        if self._dir is None:
            return self._last_log
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_group(process)
        if self._dir is not None:
            self._last_log = self.log()
            self._dir.cleanup()
            self._dir = None


def stop_group(process: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM the process's group (started with ``start_new_session``), SIGKILL it if it hangs."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def running(*servers: Server, timeout: float = 30) -> Iterator[tuple[Server, ...]]:
    """Start every server (in parallel), wait until all answer, stop them all afterwards."""
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(timeout)
        yield servers
    finally:
        for server in servers:
            server.stop()


# --- a TCP proxy that can make a service unreachable for real ---------------------------------


class TcpProxy:
    """Forward 127.0.0.1:port to a real service; ``close()`` refuses connections and cuts open ones."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open_sockets: set[socket.socket] = set()
        self.accepted = 0

    @property
    def is_open(self) -> bool:
        return self._listener is not None

    def open(self) -> TcpProxy:
        if self._listener is not None:
            return self
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._stop.clear()
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """The port is closed (connection refused) and every forwarded connection is cut."""
        listener, self._listener = self._listener, None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._open_sockets = self._open_sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if self._stop.is_set():
                    client.close()
                    upstream.close()
                    return
                self._open_sockets.update((client, upstream))
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open_sockets.discard(src)
                self._open_sockets.discard(dst)
            src.close()


def report_figure(test: str, name: str, value: float) -> None:
    """Append a measured figure to ``$MF_FIGURES`` (JSON lines), when set, for the README."""
    target = os.environ.get("MF_FIGURES")
    if target:
        line = json.dumps({"db": os.environ.get("MF_DB", "sqlite"), "test": test, "name": name, "value": value})
        with open(target, "a") as out:
            out.write(line + "\n")


class DatabaseLink:
    """A server's way to the test database, which a test can cut and restore for real.

    PostgreSQL and MariaDB: a :class:`TcpProxy` (closed port, open connections cut).
    SQLite: the server opens the file through a symlinked directory that is renamed away
    ("unable to open database file"), so the test's own connection is unaffected.
    """

    def __init__(self, settings_dict: Mapping[str, Any]) -> None:
        self.settings_dict = dict(settings_dict)
        self.vendor = os.environ.get("MF_DB", "sqlite")
        self.proxy: TcpProxy | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        if self.vendor == "sqlite":
            self._dir = tempfile.TemporaryDirectory(prefix="mf_dblink_")
            self._link = Path(self._dir.name, "db")
            self._off = Path(self._dir.name, "db.off")
            target = Path(str(settings_dict["NAME"])).resolve()
            os.symlink(target.parent, self._off)
            self._name = str(self._link / target.name)
        else:
            default_port = "5432" if self.vendor == "postgres" else "3306"
            self.proxy = TcpProxy(int(settings_dict.get("PORT") or default_port))

    def env(self) -> dict[str, str]:
        env = db_env(self.settings_dict)
        if self.proxy is not None:
            env.update({"MF_DB_HOST": "127.0.0.1", "MF_DB_PORT": str(self.proxy.port)})
        else:
            env["MF_DB_NAME"] = self._name
        return env

    def open(self) -> None:
        if self.proxy is not None:
            self.proxy.open()
        elif not self._link.exists():
            os.rename(self._off, self._link)

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
        elif self._link.exists():
            os.rename(self._link, self._off)

    def stop(self) -> None:
        self.close()
        if self._dir is not None:
            self._dir.cleanup()


# --- polling ----------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "") -> float:
    """Poll ``predicate`` until it is truthy; return the seconds it took (fail after ``timeout``)."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:.1f} s: {what or predicate}")
        time.sleep(interval)


@dataclass
class Convergence:
    """When each server first served the expected status, and every status seen on the way."""

    elapsed: dict[str, float]
    seen: dict[str, list[int | None]]


def converge(
    servers: tuple[Server, ...] | list[Server],
    expected: int,
    timeout: float,
    path: str = "/",
    since: float | None = None,
    interval: float = 0.02,
    strict: bool = True,
) -> Convergence:
    """Poll every server until each serves ``expected`` on ``path``; seconds are counted from ``since``.

    After ``timeout``, fail; or, with ``strict=False``, return: a server missing from ``elapsed``
    never served it (the load harness reports that rather than failing)."""
    start = time.monotonic() if since is None else since
    deadline = time.monotonic() + timeout
    elapsed: dict[str, float] = {}
    seen: dict[str, list[int | None]] = {s.name: [] for s in servers}
    while len(elapsed) < len(servers):
        for server in servers:
            if server.name in elapsed:
                continue
            status = server.status(path)
            seen[server.name].append(status)
            if status == expected:
                elapsed[server.name] = time.monotonic() - start
        if len(elapsed) < len(servers):
            if time.monotonic() >= deadline:
                if not strict:
                    break
                tails = {name: statuses[-5:] for name, statuses in seen.items()}
                logs = "\n".join(f"--- {s.name}\n{s.log()[-3000:]}" for s in servers)
                raise AssertionError(f"not every server served {expected} within {timeout} s: {tails}\n{logs}")
            time.sleep(interval)
    return Convergence(elapsed, seen)


# --- a toggler process (tests/test_concurrency.py, stress/) --------------------------------------


def toggle_main() -> None:
    """Toggle maintenance for site 1 from a separate process, writing one JSON line per write.

    Run as ``python -c "from tests.servers import toggle_main; toggle_main()" SEED COUNT BARRIER``:
    after Django is set up it creates ``BARRIER.ready.SEED`` and waits (at most 60 s) for
    ``BARRIER.go``, so that several togglers start writing at the same moment. Each write is
    ``setmaintenance on|off`` or ``waffle_switch maintenance_mode_site_1 on|off`` (in-process
    ``call_command``), with its ``time.monotonic()`` start and end (one clock for every process).
    """
    import io
    import random

    import django

    django.setup()
    from django.core.management import call_command

    seed, count, barrier = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng = random.Random(seed)
    Path(f"{barrier}.ready.{seed}").touch()
    deadline = time.monotonic() + 60
    while not Path(f"{barrier}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    sink = io.StringIO()
    for _ in range(count):
        on = rng.random() < 0.5
        tool = rng.choice(["setmaintenance", "waffle_switch"])
        word = "on" if on else "off"
        start = time.monotonic()
        if tool == "setmaintenance":
            call_command("setmaintenance", word, stdout=sink)
        else:
            call_command("waffle_switch", "maintenance_mode_site_1", word, stdout=sink)
        end = time.monotonic()
        print(json.dumps({"start": start, "end": end, "on": on, "tool": tool, "seed": seed}), flush=True)
        time.sleep(rng.random() * 0.15)
