"""The fleet tier (``MAINTENANCE_STATE_CACHE``): 1, 8 and 32 server processes (single-worker gunicorn
servers, so that each one can be polled) on a PostgreSQL database made for the run, without and with the
tier on Redis, at the default TTL (2 s). Every process is polled in turn for a window of seconds (each gets
several requests per TTL, so each refreshes as it would under traffic); the database reads of the state are
counted from each server's log (one DEBUG line per ``load_snapshot``, six queries each). Then
``setmaintenance on`` and ``off`` run in a site process and every server is polled every 10 ms until all of
them serve the new status. Last, in one site process at TTL 0.05 s, the wall time of a request that finds
the state older than the TTL (it starts the background refresh), of one with a fresh state, and of a refresh
made by the request itself (``store.current()`` then the request: what every such request paid in 1.0)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from harness import PREFIX, Agent, Resources, log, site_server, table

from tests.servers import Server, converge, running

TITLE = "Fleet tier: database reads of N processes, propagation, the cost of a refresh"
TTL = 2.0  # MAINTENANCE_STATE_TTL's default
QUERIES_PER_READ = 6  # load_snapshot: tests/test_snapshot.py holds it
READ_LINE = "Reading the maintenance state from the database"
COST_TTL = 0.05  # so that samples come quickly: every other request finds the state old
HEAD = ["processes", "without: queries/s", "without: reads/TTL", "with: queries/s", "with: reads/TTL",
        "every process sees on / off, without (s)", "with (s)"]  # fmt: skip
WHAT = {
    "fresh": "a request, state fresh",
    "triggering": "a request that starts a refresh (stale-while-revalidate)",
    "in_caller": "a request that makes the refresh itself, as every such request did in 1.0",
}


def reads(servers: list[Server]) -> int:
    return sum(server.log().count(READ_LINE) for server in servers)


def poll(servers: list[Server], seconds: float) -> list[int | None]:
    seen: list[int | None] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen += [server.status() for server in servers]
        time.sleep(0.01)
    return seen


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(res: Resources, args: Any) -> dict[str, Any]:
    database = res.database("postgres", "fleet")
    counts, window, samples = ((1, 4), 4.0, 20) if args.quick else ((1, 8, 32), 10.0, 200)
    rows: list[dict[str, Any]] = []
    for tier in (False, True):
        for n in counts:
            env = {"BENCH_DB": f"postgres:{database}", "BENCH_STATE_TTL": str(TTL),
                   "BENCH_REDIS_PREFIX": f"{PREFIX}-fleet-{n}", "BENCH_STATE_CACHE": "1" if tier else "0"}  # fmt: skip
            log(f"fleet: {n} process(es), {'with' if tier else 'without'} the tier")
            toggler = Agent("mf", env)  # migrates before the servers start; runs setmaintenance
            try:
                servers = [site_server("mf", {**env, "BENCH_LOG_READS": "1"}, 1, f"fleet-{int(tier)}-{n}-{i}")
                           for i in range(n)]  # fmt: skip
                with running(*servers, timeout=300):
                    converge(servers, 200, 2 * TTL + 10)
                    poll(servers, TTL)  # every process has refreshed once at least
                    before, started = reads(servers), time.monotonic()
                    statuses = poll(servers, window)
                    elapsed, count = time.monotonic() - started, reads(servers) - before
                    lags: dict[str, float | None] = {}
                    for word, status in (("on", 503), ("off", 200)):
                        done = toggler.command("setmaintenance", word)
                        seen = converge(servers, status, 3 * TTL + 10, since=done, interval=0.01, strict=False)
                        lags[word] = max(seen.elapsed.values()) if len(seen.elapsed) == n else None
            finally:
                toggler.close()
            row = {"tier": tier, "processes": n, "seconds": elapsed, "reads": count, "requests": len(statuses),
                   "bad": sum(s not in (200,) for s in statuses), "lags": lags}  # fmt: skip
            rows.append(row)
            log(f"  {count} reads in {elapsed:.1f} s ({count * QUERIES_PER_READ / elapsed:.1f} queries/s), "
                f"{len(statuses)} requests; every process saw on/off after {lags}")  # fmt: skip
    cost: dict[str, dict[str, list[float]]] = {}
    for tier in (False, True):
        env = {"BENCH_DB": f"postgres:{database}", "BENCH_STATE_TTL": str(COST_TTL),
               "BENCH_REDIS_PREFIX": f"{PREFIX}-fleet-cost", "BENCH_STATE_CACHE": "1" if tier else "0"}  # fmt: skip
        log(f"fleet: the cost of a refresh, {'with' if tier else 'without'} the tier ({samples} samples)")
        agent = Agent("mf", env)
        try:
            cost["tier" if tier else "database"] = agent.ask(timeout=600, op="refresh", n=samples)
        finally:
            agent.close()
    return {"ttl": TTL, "cost_ttl": COST_TTL, "window": window, "rows": rows, "cost": cost}


def render(data: dict[str, Any]) -> list[str]:
    ttl = data["ttl"]

    def lag(value: float | None) -> str:
        return "not seen" if value is None else f"{value:.2f}"

    by_n: dict[int, dict[bool, dict[str, Any]]] = {}
    for row in data["rows"]:
        by_n.setdefault(row["processes"], {})[row["tier"]] = row
    lines = []
    for n, rows in sorted(by_n.items()):
        cells: list[str] = [str(n)]
        for tier in (False, True):
            row = rows.get(tier)
            cells.append("–" if row is None else f"{row['reads'] * QUERIES_PER_READ / row['seconds']:.1f}")
            cells.append("–" if row is None else f"{row['reads'] / (row['seconds'] / ttl):.1f}")
        for tier in (False, True):
            row = rows.get(tier)
            cells.append("–" if row is None else f"{lag(row['lags']['on'])} / {lag(row['lags']['off'])}")
        lines.append(cells)
    cost_lines = []
    for name, label in (("database", "without the tier"), ("tier", "with the tier")):
        samples = data["cost"].get(name)
        if samples is None:
            continue
        for key, what in WHAT.items():
            values = samples[key]
            cost_lines.append([label, what, len(values), f"{statistics.median(values):.0f}",
                               f"{percentile(values, 99):.0f}"])  # fmt: skip
    return [
        f"Database queries a second made by N processes reading the state ({QUERIES_PER_READ} queries per read, "
        f"counted from the servers' logs over {data['window']:g} s of polling every process in turn), reads per "
        f"TTL ({ttl:g} s) for the whole fleet, and the seconds from `setmaintenance`'s return until every "
        "process serves the new status. Target with the tier: at most one read per TTL whatever N; a change "
        f"seen within the TTL ({ttl:g} s) plus the polling.",
        "",
        *table(HEAD, "rrrrrrr", lines),
        "",
        f"Wall µs in one site process (WSGI handler, no sockets), `MAINTENANCE_STATE_TTL` = {data['cost_ttl']:g} s "
        "so that samples come quickly. A request that finds the state older than the TTL only wakes the "
        "process's background refresher; before 1.1 it made the refresh itself (six queries, or with the tier "
        "a GET), as a process's first read and the read after a local write still do.",
        "",
        *table(["", "", "samples", "median µs", "p99 µs"], "llrrr", cost_lines),
    ]
