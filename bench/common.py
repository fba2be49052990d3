"""Shared plumbing for the benchmark sections: venvs, processes, ports, statistics."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MAIN_PYTHON = Path(sys.executable)
VENVS = BENCH / ".venvs"

MM_VERSION = os.environ.get("BENCH_MM_VERSION", "0.23.0")  # django-maintenance-mode, latest on PyPI
MM2_VERSION = os.environ.get("BENCH_MM2_VERSION", "2.0")  # django-maintenancemode-2
PEER_COMMON = ["Django>=5.2,<5.3", "psycopg[binary]>=3.2", "gunicorn>=23.0"]
PEERS: dict[str, list[str]] = {
    "mm": [f"django-maintenance-mode=={MM_VERSION}", *PEER_COMMON],
    # 2.0 imports distutils (gone in Python 3.12): setuptools provides it again.
    "mm2": [f"django-maintenancemode-2=={MM2_VERSION}", "setuptools", *PEER_COMMON],
}
LABELS = {
    "baseline": "baseline (no maintenance middleware)",
    "mf": "maintenance_flags",
    "waffle": "naive waffle switch_is_active",
    "mm": f"django-maintenance-mode {MM_VERSION}",
    "mm2": f"django-maintenancemode-2 {MM2_VERSION}",
}


_T0 = time.monotonic()


def log(*args: Any) -> None:
    print(f"[bench {time.monotonic() - _T0:5.0f}s]", *args, file=sys.stderr, flush=True)


def ensure_peer_venv(kind: str) -> Path:
    """Create ``bench/.venvs/<kind>`` with the peer and its deps (once; redone if the spec changes)."""
    venv = VENVS / kind
    python = venv / "bin" / "python"
    spec = "\n".join(PEERS[kind])
    stamp = venv / ".bench-spec"
    if python.exists() and stamp.exists() and stamp.read_text() == spec:
        return python
    log(f"creating {venv} with {', '.join(PEERS[kind])}")
    shutil.rmtree(venv, ignore_errors=True)
    uv = MAIN_PYTHON.parent / "uv"
    if uv.exists():
        subprocess.run([str(uv), "venv", "-q", "--python", str(MAIN_PYTHON), str(venv)], check=True)
        subprocess.run([str(uv), "pip", "install", "-q", "--python", str(python), *PEERS[kind]], check=True)
    else:
        subprocess.run([str(MAIN_PYTHON), "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS[kind]], check=True)
    stamp.write_text(spec)
    return python


def python_for(kind: str) -> Path:
    return ensure_peer_venv(kind) if kind in PEERS else MAIN_PYTHON


def env_for(kind: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a process of this kind: only maintenance_flags kinds see the repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "MF_", "DJANGO_"))}
    paths = [str(BENCH)]
    if kind == "mf":
        paths.append(str(ROOT))
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(paths),
            "DJANGO_SETTINGS_MODULE": "benchsite.settings",
            "BENCH_KIND": kind,
            "PYTHONWARNINGS": "ignore::DeprecationWarning",
        }
    )
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class JsonProcess:
    """A child speaking one JSON line per command on stdin/stdout."""

    def __init__(self, argv: list[str], env: dict[str, str], stderr: IO[Any] | None = None, timeout: float = 120):
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True, cwd=BENCH
        )
        self.hello = self.read(timeout)

    def read(self, timeout: float = 120) -> dict[str, Any]:
        assert self.proc.stdout is not None
        import select

        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no answer from {self.proc.args} within {timeout}s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.proc.args} exited with {self.proc.wait()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, cmd: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        reply = self.read(timeout)
        if "error" in reply:
            raise RuntimeError(f"{cmd}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> float:
    """Half the interquartile range, relative to the median (±%)."""
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return (q[2] - q[0]) / 2 / statistics.median(values) * 100


def machine_info() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    return {
        "cpu": f"{cpu} × {os.cpu_count()}",
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": version(["psql", "--version"]),
        "redis": version(["redis-server", "--version"]),
        "wrk": version(["wrk", "--version"]),
        "load": "load average {:.2f} {:.2f} {:.2f} at start".format(*os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


# --- real servers -------------------------------------------------------------------------------


def http_status(port: int, path: str = "/", timeout: float = 3.0) -> int:
    """One GET to 127.0.0.1:port; 0 when the server does not answer."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": "127.0.0.1", "Accept": "text/html"})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


class Gunicorn:
    """A gunicorn server on 127.0.0.1 for one kind of site: start, ``wait_ready()``, ``stop()``."""

    def __init__(self, kind: str, env_extra: dict[str, str], workers: int, logfile: Path) -> None:
        self.port = free_port()
        self.logfile = logfile
        argv = [
            str(python_for(kind)),
            "-m",
            "gunicorn",
            "benchsite.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--log-level",
            "warning",
            "--error-logfile",
            str(logfile),
            "--graceful-timeout",
            "3",
        ]
        self.kind = kind
        self.proc = subprocess.Popen(argv, env=env_for(kind, env_extra), cwd=BENCH, stdout=subprocess.DEVNULL)

    def wait_ready(self) -> Gunicorn:
        deadline = time.monotonic() + 90
        while http_status(self.port, timeout=1) == 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn for {self.kind} did not start:\n{self.log()}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        try:
            return self.logfile.read_text()
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Postgres:
    """Create and drop dedicated databases (127.0.0.1:5432, user postgres, trust)."""

    def __init__(self) -> None:
        import psycopg

        self.conn = psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True)
        self.names: list[str] = []

    def create(self, name: str) -> str:
        self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.conn.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return name

    def drop_all(self) -> None:
        for name in self.names:
            try:
                self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # keep dropping the others
                log(f"could not drop {name}: {exc}")
        self.names.clear()
        self.conn.close()


def redis_cleanup(prefix: str) -> None:
    """Delete the keys a run left in Redis under its own prefix."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()
