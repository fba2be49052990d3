"""Section 4: requests/s under wrk against real gunicorn servers, and switching under load.

Five gunicorn servers (2 sync workers each) on one PostgreSQL database: the baseline site, a
maintenance_flags site whose Site 1 is open, and the same app serving Site 2, kept in maintenance
(so "off" and "on" need no waiting for the TTL), with the project's 503.html rendered per request,
the same prerendered (``MAINTENANCE_503_PRERENDER``), and the built-in page (no project 503.html on
the template path). Rounds alternate the five in a shuffled order.
Then Site 1 is switched on and off every second by a third process while wrk loads it: every
response must be a 200 or the intended 503 (no other 5xx, no socket errors).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from common import BENCH, Gunicorn, JsonProcess, Postgres, env_for, log, median, python_for, spread

LUA = BENCH / "wrk_status.lua"
CONNECTIONS = 8


def wrk(port: int, seconds: float) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package wrk; `make sysdeps` installs it)")
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(LUA)]
    out = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def run(quick: bool, work: Path) -> dict[str, Any]:
    rounds, seconds, flips = (1, 2.0, 4) if quick else (3, 4.0, 12)
    pg = Postgres()
    name = pg.create(f"mfbench{os.getpid()}_load")
    base_env = {"BENCH_DB": f"postgres:{name}"}
    servers: dict[str, Gunicorn] = {}
    toggler = None
    try:
        toggler = JsonProcess(
            [str(python_for("mf")), str(BENCH / "toggler.py")], env_for("mf", {**base_env, "BENCH_EXTRA_SITE": "1"})
        )
        specs: dict[str, tuple[str, dict[str, str]]] = {
            "baseline": ("baseline", {}),
            "mf off": ("mf", {"BENCH_SITE_ID": "1"}),
            "mf on": ("mf", {"BENCH_SITE_ID": "2"}),
            "mf on, built-in page": ("mf", {"BENCH_SITE_ID": "2", "BENCH_PROJECT_TEMPLATES": "0"}),
            "mf on, prerendered": ("mf", {"BENCH_SITE_ID": "2", "BENCH_503_PRERENDER": "1"}),
        }
        for label, (kind, extra) in specs.items():
            logfile = work / f"load-{label.replace(' ', '-').replace(',', '')}.log"
            servers[label] = Gunicorn(kind, {**base_env, **extra}, 2, logfile)
        for server in servers.values():
            server.wait_ready()
        rps: dict[str, list[float]] = {label: [] for label in specs}
        statuses: dict[str, dict[str, int]] = {label: {} for label in specs}
        errors: dict[str, int] = dict.fromkeys(specs, 0)
        for label in specs:  # warm up each server (imports, first state read)
            wrk(servers[label].port, 1)
        rng = random.Random(4)
        for r in range(rounds):
            order = list(specs)
            rng.shuffle(order)
            for label in order:
                result = wrk(servers[label].port, seconds)
                rps[label].append(result["rps"])
                for status, count in result["statuses"].items():
                    statuses[label][status] = statuses[label].get(status, 0) + count
                errors[label] += sum(v for k, v in result["errors"].items() if k != "status")
            log(f"throughput round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rps.items()))
        # Switching on and off every second under load.
        port = servers["mf off"].port
        proc = subprocess.Popen(
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{flips + 2}s", "--timeout", "5s", "-s", str(LUA),
             f"http://127.0.0.1:{port}/"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1)
        toggler.ask({"flip": [["setmaintenance", "on"], ["setmaintenance", "off"]], "count": flips, "interval": 1.0})
        out, _ = proc.communicate(timeout=60)
        if flips % 2:
            toggler.ask({"argv": ["setmaintenance", "off"]})
        line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
        switching: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
        bad = sum(n for s, n in switching["statuses"].items() if int(s) >= 500 and int(s) != 503)
        socket_errors = sum(v for k, v in switching["errors"].items() if k != "status")
        tracebacks = sum(server.log().count("Traceback") for server in servers.values())
        log(f"switching under load: {switching['statuses']}, socket errors {socket_errors}, tracebacks {tracebacks}")
        return {
            "rps": rps,
            "statuses": statuses,
            "socket_errors": errors,
            "switching": switching,
            "flips": flips,
            "bad_5xx": bad,
            "switch_socket_errors": socket_errors,
            "tracebacks": tracebacks,
            "seconds": seconds,
            "rounds": rounds,
        }
    finally:
        for server in servers.values():
            server.stop()
        if toggler is not None:
            toggler.close()
        pg.drop_all()


def section(result: dict[str, Any]) -> list[str]:
    rps = result["rps"]
    base = median(rps["baseline"])
    lines = [
        "## Throughput under load",
        "",
        f"`wrk -t1 -c{CONNECTIONS}` for {result['seconds']:g} s × {result['rounds']} interleaved rounds "
        "against gunicorn (2 sync workers, 127.0.0.1) on PostgreSQL; "
        "the load generator shares the 2 cores with the server.",
        "",
        "| Server | requests/s (median ±half IQR) | × baseline | responses by status | socket errors |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    names = {"baseline": "baseline (no maintenance middleware)", "mf off": "maintenance_flags, off",
             "mf on": "maintenance_flags, on (anonymous 503, project 503.html)",
             "mf on, built-in page": "maintenance_flags, on (anonymous 503, built-in page)",
             "mf on, prerendered": "maintenance_flags, on (anonymous 503, project 503.html prerendered)"}  # fmt: skip
    for label, values in rps.items():
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"][label].items()))
        lines.append(
            f"| {names[label]} | {median(values):.0f} ±{spread(values):.0f}% | {median(values) / base:.2f}× "
            f"| {statuses} | {result['socket_errors'][label]} |"
        )
    sw = result["switching"]
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(sw["statuses"].items()))
    verdict = "none" if result["bad_5xx"] == 0 else f"**{result['bad_5xx']}**"
    lines += [
        "",
        f"Switching maintenance on and off every second ({result['flips']} changes with `setmaintenance` from a third "
        f"process) under the same load: {sw['requests']} responses ({statuses}); 5xx other than 503: {verdict}; "
        f"socket errors: {result['switch_socket_errors']}; tracebacks in the server logs: {result['tracebacks']}.",
        "",
    ]
    return lines
