"""Section 3: how long until a change made in a third process is served by two running servers.

Two gunicorn processes (one sync worker each) on a PostgreSQL database made for this run; a third
process (bench/toggler.py) runs the management command; two threads poll the servers every 10 ms and
note when each first serves the new status. Latency = that moment - the moment the command returned.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from common import BENCH, LABELS, Gunicorn, JsonProcess, Postgres, env_for, http_status, log, python_for, redis_cleanup

TTL = 2.0  # MAINTENANCE_STATE_TTL's default: the bench does not set it
POLL = 0.01

MF_SWITCH = "maintenance_mode_site_1"
MF_COMMANDS = [
    ("setmaintenance", ["setmaintenance", "on"], ["setmaintenance", "off"]),
    ("waffle_switch", ["waffle_switch", MF_SWITCH, "on"], ["waffle_switch", MF_SWITCH, "off"]),
]
WAFFLE_COMMANDS = [
    ("waffle_switch", ["waffle_switch", "maintenance_mode", "on"], ["waffle_switch", "maintenance_mode", "off"])
]
MM_COMMANDS = [("maintenance_mode", ["maintenance_mode", "on"], ["maintenance_mode", "off"])]
MM2_COMMANDS = [("setmaintenance", ["setmaintenance", "on"], ["setmaintenance", "off"])]

# (kind, waffle cache, [(command label, on argv, off argv)], repetitions, give up after s)
CONFIGS: list[tuple[str, str, list[tuple[str, list[str], list[str]]], int, float]] = [
    ("mf", "locmem", MF_COMMANDS, 2, 8.0),
    ("mf", "redis", MF_COMMANDS, 2, 8.0),
    ("waffle", "locmem", WAFFLE_COMMANDS, 1, 6.0),
    ("waffle", "redis", WAFFLE_COMMANDS, 1, 6.0),
    ("mm", "-", MM_COMMANDS, 1, 6.0),
    ("mm2", "-", MM2_COMMANDS, 1, 6.0),
]


def wait_status(ports: list[int], status: int, deadline: float) -> list[float | None]:
    """Poll every server until it serves ``status``; the wall-clock time it first did, or None."""
    seen: list[float | None] = [None] * len(ports)

    def poll(i: int, port: int) -> None:
        while time.monotonic() < deadline:
            if http_status(port, timeout=2) == status:
                seen[i] = time.time()
                return
            time.sleep(POLL)

    threads = [threading.Thread(target=poll, args=(i, p)) for i, p in enumerate(ports)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen


def run(quick: bool, work: Path) -> dict[str, Any]:
    pg = Postgres()
    prefix = f"mfbench{os.getpid()}"
    results: list[dict[str, Any]] = []
    try:
        name = pg.create(f"{prefix}_propagation")  # one database: the kinds' tables do not clash
        for kind, cache, commands, reps, give_up in CONFIGS:
            reps = 1 if quick else reps
            extra = {
                "BENCH_DB": f"postgres:{name}",
                "BENCH_WAFFLE_CACHE": "redis" if cache == "redis" else "locmem",
                "BENCH_REDIS_PREFIX": prefix,
                "BENCH_MM_STATE_FILE": str(work / "mm-state.txt"),
            }
            log(f"propagation: {LABELS[kind]}, cache {cache}")
            toggler = JsonProcess([str(python_for(kind)), str(BENCH / "toggler.py")], env_for(kind, extra))
            servers: list[Gunicorn] = []
            try:
                servers = [Gunicorn(kind, extra, 1, work / f"gunicorn-{kind}-{cache}-{i}.log") for i in range(2)]
                for server in servers:
                    server.wait_ready()
                ports = [s.port for s in servers]
                for label, on_argv, off_argv in commands:
                    for direction, argv, status in [("on", on_argv, 503), ("off", off_argv, 200)] * reps:
                        before = 200 if status == 503 else 503
                        if None in wait_status(ports, before, time.monotonic() + give_up + TTL):
                            log(f"  {label} {direction}: servers not at {before} first; skipped")
                            continue
                        time.sleep(random.uniform(0, 0.5))
                        done = toggler.ask({"argv": argv})["t"]
                        seen = wait_status(ports, status, time.monotonic() + give_up)
                        latencies = [None if t is None else max(0.0, t - done) for t in seen]
                        results.append(
                            {
                                "kind": kind,
                                "cache": cache,
                                "command": label,
                                "direction": direction,
                                "latencies": latencies,
                                "give_up": give_up,
                            }
                        )
                        log(
                            f"  {label} {direction}: "
                            + ", ".join("never" if x is None else f"{x:.2f}s" for x in latencies)
                        )
                        if None in seen and direction == "on":
                            toggler.ask({"argv": off_argv})  # never seen: put the database back
                            break
            finally:
                for server in servers:
                    server.stop()
                toggler.close()
        return {"results": results, "ttl": TTL}
    finally:
        pg.drop_all()
        redis_cleanup(prefix)


def section(result: dict[str, Any]) -> list[str]:
    rows: dict[tuple[str, str, str], dict[str, list[float | None]]] = {}
    give_up: dict[tuple[str, str, str], float] = {}
    for r in result["results"]:
        key = (r["kind"], r["cache"], r["command"])
        rows.setdefault(key, {"on": [], "off": []})[r["direction"]] += r["latencies"]
        give_up[key] = r["give_up"]
    target = result["ttl"] + 0.5
    lines = [
        "## Propagation across processes",
        "",
        "Two gunicorn servers (one sync worker each) on a PostgreSQL database created for the run; the change is made "
        "by a third process running the management command; each server is polled every 10 ms. Seconds from the "
        "command's return until each server serves the new status (all servers, all repetitions); "
        f"`MAINTENANCE_STATE_TTL` = {result['ttl']:g} s (default), target ≤ {target:g} s.",
        "",
        "| Variant | waffle cache | toggled with | → 503: median / max (s) | → 200: median / max (s) | "
        f"≤ {target:g} s |",
        "| --- | --- | --- | ---: | ---: | :---: |",
    ]

    def fmt(values: list[float | None], limit: float) -> tuple[str, bool]:
        if not values:
            return "–", False
        if any(v is None for v in values):
            return f"> {limit:g} (not seen)", False
        seen = sorted(v for v in values if v is not None)
        mid = seen[len(seen) // 2] if len(seen) % 2 else (seen[len(seen) // 2 - 1] + seen[len(seen) // 2]) / 2
        return f"{mid:.2f} / {seen[-1]:.2f}", seen[-1] <= target

    for key, directions in rows.items():
        kind, cache, command = key
        on, on_ok = fmt(directions["on"], give_up[key])
        off, off_ok = fmt(directions["off"], give_up[key])
        ok = on_ok and (off_ok or not directions["off"])
        lines.append(f"| {LABELS[kind]} | {cache} | `{command}` | {on} | {off} | {'yes' if ok else 'no'} |")
    lines += [
        "",
        "The peers see a change at once because they read a file (django-maintenance-mode) or query the "
        "database (django-maintenancemode-2) on every request; the naive waffle middleware with waffle's default "
        "local-memory cache keeps a switch for the cache timeout (300 s by default), so other processes do not see it.",
        "",
    ]
    return lines
