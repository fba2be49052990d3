"""Plumbing for the sections: the peers' venvs, site processes (agent.py), servers (tests/servers.py),
databases and Redis keys (removed by ``Resources.close``), wrk, statistics, Markdown tables."""

from __future__ import annotations

import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from tests.servers import Server, subprocess_env  # noqa: E402

PREFIX = f"mfbench{os.getpid()}"  # every database, Redis key and directory of a run: removed at the end
MM_VERSION = os.environ.get("BENCH_MM_VERSION", "0.23.0")  # django-maintenance-mode
MM2_VERSION = os.environ.get("BENCH_MM2_VERSION", "2.0")  # django-maintenancemode-2
PEER_COMMON = ["Django>=5.2,<5.3", "psycopg[binary]>=3.2", "gunicorn>=23.0"]
PEERS = {  # 2.0 imports distutils (gone in Python 3.12): setuptools provides it again
    "mm": [f"django-maintenance-mode=={MM_VERSION}", *PEER_COMMON],
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


def python_for(kind: str) -> Path:
    """The interpreter for a kind; a peer's venv (``bench/.venvs/<kind>``) is made once, redone if its spec changes."""
    if kind not in PEERS:
        return Path(sys.executable)
    venv = BENCH / ".venvs" / kind
    python, stamp, spec = venv / "bin" / "python", venv / ".bench-spec", "\n".join(PEERS[kind])
    if not (python.exists() and stamp.exists() and stamp.read_text() == spec):
        log(f"creating {venv} with {', '.join(PEERS[kind])}")
        shutil.rmtree(venv, ignore_errors=True)
        uv = Path(sys.executable).parent / "uv"
        subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        subprocess.run([str(uv), "pip", "install", "-q", "--python", str(python), *PEERS[kind]], check=True)
        stamp.write_text(spec)
    return python


def site_env(kind: str, extra: dict[str, str]) -> dict[str, str]:
    return {"BENCH_KIND": kind, "PYTHONWARNINGS": "ignore::DeprecationWarning", **extra}


def site_server(kind: str, extra: dict[str, str], workers: int, name: str) -> Server:
    """gunicorn with plain sync workers serving bench/benchsite.py in the kind's venv."""
    app = "django.core.wsgi:get_wsgi_application()"
    return Server("gunicorn", site_env(kind, extra), workers=workers, threads=1, name=name, base="benchsite",
                  app=app, bin=python_for(kind).parent, path=str(BENCH))  # fmt: skip


class Agent:
    """A bench/agent.py process: one JSON line per command on stdin, one answer on stdout."""

    def __init__(self, kind: str, env: dict[str, str], settings: str = "benchsite") -> None:
        full = subprocess_env(site_env(kind, env) if settings == "benchsite" else env, settings, str(BENCH))
        argv = [str(python_for(kind)), str(BENCH / "agent.py")]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=full, text=True, cwd=BENCH
        )
        self.hello = self.read(180)

    def read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            raise TimeoutError(f"no answer from {self.proc.args} within {timeout}s")
        if not (line := self.proc.stdout.readline()):
            raise RuntimeError(f"{self.proc.args} exited with {self.proc.wait()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, timeout: float = 180, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        if "error" in (reply := self.read(timeout)):
            raise RuntimeError(f"{cmd}: {reply['error']}")
        return reply

    def command(self, *argv: str) -> float:
        """Run a management command in the site process: ``time.monotonic()`` when it returned."""
        times: list[list[float]] = self.ask(op="commands", argv=[list(argv)], count=1, interval=0)["times"]
        return times[0][1]

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Resources:
    """What a run creates, named after PREFIX: a work directory, databases, Redis keys. ``close()`` removes them."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
        self.databases: list[tuple[str, str]] = []

    def database(self, vendor: str, suffix: str) -> str:
        """A new empty database: its name (SQLite: a file in the work directory)."""
        name = f"{PREFIX}_{suffix}"
        if vendor == "sqlite":
            return str(self.work / f"{name}.sqlite3")
        self.admin(vendor, f'CREATE DATABASE "{name}"', f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        self.databases.append((vendor, name))
        return name

    @staticmethod
    def admin(vendor: str, postgres_sql: str, mariadb_sql: str) -> None:
        if vendor == "postgres":
            import psycopg

            with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True) as c:
                c.execute(postgres_sql)
        elif vendor == "mariadb":
            import MySQLdb

            conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", charset="utf8mb4")
            try:
                conn.cursor().execute(mariadb_sql)
            finally:
                conn.close()
        else:
            raise SystemExit(f"MF_DB must be sqlite, postgres or mariadb, not {vendor!r}")

    def close(self) -> None:
        for vendor, name in self.databases:
            try:
                self.admin(
                    vendor, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f"DROP DATABASE IF EXISTS `{name}`"
                )
            except Exception as exc:  # keep dropping the others
                log(f"could not drop {name}: {exc}")
        try:
            import redis

            client = redis.Redis(host="127.0.0.1", port=6379)
            for key in client.scan_iter(match=f"{PREFIX}*", count=1000):
                client.delete(key)
            client.close()
        except Exception as exc:
            log(f"could not remove the Redis keys {PREFIX}*: {exc}")
        shutil.rmtree(self.work, ignore_errors=True)


def wrk(port: int, seconds: float, threads: int = 1, connections: int = 8, timeout: int = 5) -> dict[str, Any]:
    """``wrk`` on ``/`` with bench/status.lua: responses by status, errors, latency, requests/s."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package wrk; `make sysdeps` installs it)")
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{round(seconds)}s", f"--timeout={timeout}s",
            "-s", str(BENCH / "status.lua"), f"http://127.0.0.1:{port}/"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    result: dict[str, Any] = json.loads(next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))[11:])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["socket_errors"] = sum(n for kind, n in result["errors"].items() if kind != "status")
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> float:
    """Half the interquartile range, relative to the median (±%)."""
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return (q[2] - q[0]) / 2 / statistics.median(values) * 100


def table(head: list[str], align: str, rows: Iterable[Iterable[Any]]) -> list[str]:
    """A Markdown table; ``align`` has one letter per column: l, r or c."""
    rule = [{"l": "---", "r": "---:", "c": ":---:"}[a] for a in align]
    return ["| " + " | ".join(map(str, row)) + " |" for row in [head, rule, *rows]]


def machine() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    cpu = next((x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                if x.startswith("model name")), "?")  # fmt: skip
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": f"{cpu} × {os.cpu_count()}",
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": first_line(["psql", "--version"]),
        "redis": first_line(["redis-server", "--version"]),
        "wrk": first_line(["wrk", "--version"]),
        "load": "load average {:.2f} {:.2f} {:.2f} at start".format(*os.getloadavg()),
    }
