"""Requests/s under wrk against five gunicorn servers (2 sync workers each) on one PostgreSQL database: the
baseline; maintenance_flags with Site 1 open ("off"); the same app serving Site 2, kept in maintenance (so
"on" needs no waiting for the TTL) with the project's 503.html rendered per request, prerendered, and the
built-in page. Rounds alternate them in a shuffled order."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from harness import Agent, Resources, log, median, site_server, spread, table, wrk

from tests.servers import running

TITLE = "Throughput under load"
CONNECTIONS = 8
SERVERS: dict[str, tuple[str, str, dict[str, str]]] = {  # label: row name, kind, environment
    "baseline": ("baseline (no maintenance middleware)", "baseline", {}),
    "mf off": ("maintenance_flags, off", "mf", {"BENCH_SITE_ID": "1"}),
    "mf on": ("maintenance_flags, on (anonymous 503, project 503.html)", "mf", {"BENCH_SITE_ID": "2"}),
    "mf on, built-in page": ("maintenance_flags, on (anonymous 503, built-in page)", "mf",
                             {"BENCH_SITE_ID": "2", "BENCH_PROJECT_TEMPLATES": "0"}),
    "mf on, prerendered": ("maintenance_flags, on (anonymous 503, project 503.html prerendered)", "mf",
                           {"BENCH_SITE_ID": "2", "BENCH_503_PRERENDER": "1"}),
}  # fmt: skip


def run(res: Resources, args: Any) -> dict[str, Any]:
    rounds, seconds = (1, 2.0) if args.quick else (3, 4.0)
    env = {"BENCH_DB": f"postgres:{res.database('postgres', 'load')}"}
    Agent("mf", {**env, "BENCH_EXTRA_SITE": "1"}).close()  # migrates; Site 2 in maintenance
    servers = {label: site_server(kind, {**env, **extra}, 2, label) for label, (_, kind, extra) in SERVERS.items()}
    rps: dict[str, list[float]] = {label: [] for label in servers}
    statuses: dict[str, Counter[str]] = {label: Counter() for label in servers}
    errors = dict.fromkeys(servers, 0)
    with running(*servers.values(), timeout=90):
        for server in servers.values():  # warm up each server (imports, first state read)
            wrk(server.port, 1, connections=CONNECTIONS)
        rng = random.Random(4)
        for r in range(rounds):
            for label in rng.sample(list(servers), len(servers)):
                result = wrk(servers[label].port, seconds, connections=CONNECTIONS)
                rps[label].append(result["rps"])
                statuses[label].update(result["statuses"])
                errors[label] += result["socket_errors"]
            log(f"throughput round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rps.items()))
        tracebacks = sum(server.log().count("Traceback") for server in servers.values())
    return {"rounds": rounds, "seconds": seconds, "rps": rps, "statuses": {k: dict(v) for k, v in statuses.items()},
            "socket_errors": errors, "tracebacks": tracebacks}  # fmt: skip


def render(data: dict[str, Any]) -> list[str]:
    base = median(data["rps"]["baseline"])
    rows = [[SERVERS[label][0], f"{median(values):.0f} ±{spread(values):.0f}%", f"{median(values) / base:.2f}×",
             ", ".join(f"{k}: {v}" for k, v in sorted(data["statuses"][label].items())), data["socket_errors"][label]]
            for label, values in data["rps"].items()]  # fmt: skip
    return [
        f"`wrk -t1 -c{CONNECTIONS}` for {data['seconds']:g} s × {data['rounds']} interleaved rounds against gunicorn "
        "(2 sync workers, 127.0.0.1) on PostgreSQL; the load generator shares the cores with the server. "
        f"Tracebacks in the server logs: {data['tracebacks']}.",
        "",
        *table(["Server", "requests/s (median ±half IQR)", "× baseline", "responses by status", "socket errors"],
               "lrrlr", rows),
    ]  # fmt: skip
