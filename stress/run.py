"""Bounded load run: gunicorn on 127.0.0.1 under wrk, maintenance flipped on/off every second.

    MF_DB=postgres .venv/bin/python stress/run.py [--duration 20] [--flip-every 1] [--ttl 0.5]

What it does, all on loopback and bounded in time:

1. creates a fresh database (``mf_stress_<pid>``; a temporary file for SQLite) and migrates it;
2. starts gunicorn (``--workers`` processes, 4 threads each) serving testproject on it;
3. for ``--duration`` seconds: wrk loads ``/`` (counting responses per status with
   stress/status.lua), a Python prober requests ``/`` on fresh connections and records when
   each request started and what it got, and a flipper turns ``maintenance_mode_site_1``
   on and off every ``--flip-every`` seconds with ``Switch.save()`` from this process;
4. reports requests served, 503s, other 5xx (must be 0), connection errors, and how long the
   server took to follow each flip (the start of the last request after a flip that still got
   the previous state), then drops the database. Exit status 1 if a check fails.

The summary is printed and written to stress/results.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import Server, fetch, manage  # noqa: E402

HERE = Path(__file__).resolve().parent
WRK = shutil.which("wrk") or "/usr/bin/wrk"


@dataclass
class Probe:
    started: float
    status: int | None


@dataclass
class Run:
    flips: list[tuple[float, bool]] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    wrk_statuses: Counter[int] = field(default_factory=Counter)
    wrk_errors: dict[str, int] = field(default_factory=dict)
    wrk_latency: dict[str, float] = field(default_factory=dict)
    wrk_output: str = ""


# --- database -------------------------------------------------------------------------------------


def create_database(vendor: str) -> tuple[dict[str, str], object]:
    name = f"mf_stress_{os.getpid()}"
    if vendor == "sqlite":
        directory = tempfile.mkdtemp(prefix="mf_stress_")
        return {"MF_DB": "sqlite", "MF_DB_NAME": f"{directory}/{name}.sqlite3"}, directory
    if vendor == "postgres":
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    elif vendor == "mariadb":
        import MySQLdb

        conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root")
        conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        conn.close()
    else:
        raise SystemExit(f"MF_DB must be sqlite, postgres or mariadb, not {vendor!r}")
    return {"MF_DB": vendor, "MF_DB_NAME": name}, name


def drop_database(vendor: str, handle: object) -> None:
    if vendor == "sqlite":
        shutil.rmtree(str(handle), ignore_errors=True)
    elif vendor == "postgres":
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{handle}" WITH (FORCE)')
    else:
        import MySQLdb

        conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root")
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{handle}`")
        conn.close()


# --- load -------------------------------------------------------------------------------------------


def flipper(run: Run, stop: threading.Event, every: float, deadline: float) -> None:
    from maintenance_flags.state import site_switch_name, switch_model

    switch = switch_model().objects.get(name=site_switch_name(1))
    on = False
    next_at = time.monotonic()
    while not stop.is_set() and time.monotonic() < deadline:
        on = not on
        switch.active = on
        switch.save()
        run.flips.append((time.monotonic(), on))
        next_at += every
        stop.wait(max(0.0, next_at - time.monotonic()))
    if on:  # leave it off
        switch.active = False
        switch.save()


def prober(run: Run, lock: threading.Lock, port: int, stop: threading.Event, deadline: float) -> None:
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.monotonic()
        try:
            status: int | None = fetch(port, "/", timeout=10).status
        except OSError:
            status = None
        with lock:
            run.probes.append(Probe(started, status))
        time.sleep(0.005)


def run_wrk(run: Run, port: int, duration: float, threads: int, connections: int) -> None:
    command = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{int(duration)}s",
        "--timeout=10s",
        "-s",
        str(HERE / "status.lua"),
        f"http://127.0.0.1:{port}/",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False)
    run.wrk_output = result.stdout + result.stderr
    for code, count in re.findall(r"^STATUS (\d+) (\d+)$", result.stdout, re.M):
        run.wrk_statuses[int(code)] += int(count)
    if match := re.search(r"^ERRORS (.*)$", result.stdout, re.M):
        run.wrk_errors = {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}
    if match := re.search(r"^LATENCY (.*)$", result.stdout, re.M):
        run.wrk_latency = {k: float(v) for k, v in (pair.split("=") for pair in match.group(1).split())}


# --- analysis ---------------------------------------------------------------------------------------


def follow_lags(run: Run, end: float) -> tuple[list[float], int]:
    """Per flip: seconds from the flip to the start of the last probe that still got the old state."""
    lags: list[float] = []
    unfollowed = 0
    bounds = [*(t for t, _ in run.flips[1:]), end]
    for (flipped_at, on), until in zip(run.flips, bounds, strict=True):
        expected = 503 if on else 200
        window = [p for p in run.probes if flipped_at < p.started < until and p.status in (200, 503)]
        stale = [p.started - flipped_at for p in window if p.status != expected]
        if window and window[-1].status != expected:
            unfollowed += 1  # the next flip came first
        lags.append(max(stale, default=0.0))
    return lags, unfollowed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--flip-every", type=float, default=1.0)
    parser.add_argument("--ttl", type=float, default=0.5, help="MAINTENANCE_STATE_TTL of the servers")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8 = the server's threads)")
    parser.add_argument("--margin", type=float, default=1.0, help="allowed follow time beyond the TTL")
    parser.add_argument("--output", default=str(HERE / "results.md"))
    args = parser.parse_args()
    args.duration = min(max(args.duration, 2.0), 120.0)  # bounded whatever is asked

    vendor = os.environ.get("MF_DB", "postgres")
    db_env, handle = create_database(vendor)
    env = {**db_env, "MF_STATE_TTL": str(args.ttl), "MF_DEBUG": "0"}
    server: Server | None = None
    run = Run()
    try:
        manage("migrate", "--noinput", "--verbosity=0", env=env, timeout=300)
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
        import django

        django.setup()

        server = Server("gunicorn", env, workers=args.workers, name="gunicorn").start().wait_ready()
        stop = threading.Event()
        lock = threading.Lock()
        started = time.monotonic()
        deadline = started + args.duration
        threads = [
            threading.Thread(target=flipper, args=(run, stop, args.flip_every, deadline), daemon=True),
            threading.Thread(target=prober, args=(run, lock, server.port, stop, deadline), daemon=True),
        ]
        for thread in threads:
            thread.start()
        if os.path.exists(WRK):
            run_wrk(run, server.port, args.duration, threads=2, connections=args.connections)
        else:  # no wrk: the prober alone, plus two more prober threads as load
            extra = [threading.Thread(target=prober, args=(run, lock, server.port, stop, deadline)) for _ in range(2)]
            for thread in extra:
                thread.start()
            for thread in extra:
                thread.join(timeout=args.duration + 30)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        ended = time.monotonic()
        server_log = server.log()
    finally:
        if server is not None:
            server.stop()
        drop_database(vendor, handle)

    lags, unfollowed = follow_lags(run, ended)
    probe_statuses = Counter(p.status for p in run.probes)
    wrk_total = sum(run.wrk_statuses.values())
    other_5xx = sum(n for code, n in run.wrk_statuses.items() if code >= 500 and code != 503) + sum(
        n for code, n in probe_statuses.items() if code is not None and code >= 500 and code != 503
    )
    errors = sum(run.wrk_errors.values()) + probe_statuses.get(None, 0)
    max_lag = max(lags, default=0.0)
    elapsed = ended - started
    rows = [
        ("database", vendor),
        ("server", f"gunicorn, {args.workers} workers x 4 threads, DEBUG off"),
        ("MAINTENANCE_STATE_TTL", f"{args.ttl} s"),
        ("CONN_MAX_AGE (MF_CONN_MAX_AGE)", f"{os.environ.get('MF_CONN_MAX_AGE', '0')} s"),
        ("duration", f"{elapsed:.1f} s"),
        ("flips (on/off)", f"{len(run.flips)}, every {args.flip_every} s"),
        ("wrk requests", f"{wrk_total} ({wrk_total / elapsed:.0f}/s, {args.connections} connections)"),
        ("wrk 200 / 503", f"{run.wrk_statuses.get(200, 0)} / {run.wrk_statuses.get(503, 0)}"),
        (
            "wrk latency p50 / p99 / max",
            " / ".join(f"{run.wrk_latency.get(k, 0):.1f} ms" for k in ("p50", "p99", "max")),
        ),
        ("probe requests (200 / 503)", f"{len(run.probes)} ({probe_statuses[200]} / {probe_statuses[503]})"),
        ("other 5xx (must be 0)", str(other_5xx)),
        ("socket errors / timeouts", str(errors)),
        ("max time to follow a flip", f"{max_lag:.3f} s"),
        (
            "median / p90 time to follow",
            f"{statistics.median(lags):.3f} s / {quantile(lags, 0.9):.3f} s" if lags else "-",
        ),
        ("flips not followed before the next", str(unfollowed)),
        ("ERROR lines in server log", str(server_log.count("Internal Server Error") + server_log.count("Traceback"))),
    ]
    checks = {
        "no 5xx other than 503": other_5xx == 0,
        "no socket errors": errors == 0,
        f"every flip followed within TTL + {args.margin} s": max_lag <= args.ttl + args.margin and unfollowed == 0,
        "both states served": bool(run.wrk_statuses.get(200) or probe_statuses[200])
        and bool(run.wrk_statuses.get(503) or probe_statuses[503]),
    }
    report = render(rows, checks)
    print(report)
    Path(args.output).write_text(report)
    return 0 if all(checks.values()) else 1


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def render(rows: list[tuple[str, str]], checks: dict[str, bool]) -> str:
    lines = [
        "# Stress run (`make stress`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node() or 'localhost'}"
        f" ({os.cpu_count()} CPUs, Python {platform.python_version()}); loopback only.",
        "wrk loads `/`; a Python prober records when each of its requests started and what it got;",
        "a flipper saves `maintenance_mode_site_1` on/off with `Switch.save()`. Time to follow a flip =",
        "start of the last probe after the flip that still got the previous state.",
        "",
        "| measure | value |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        "| check | result |",
        "| --- | --- |",
        *(f"| {name} | {'pass' if ok else 'FAIL'} |" for name, ok in checks.items()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
