"""How long until a change made by a third process is served by two running servers: two gunicorn servers
(one sync worker each) on a PostgreSQL database made for the run; a site process runs the management
command; the servers are polled every 10 ms (tests.servers.converge) from the command's return."""

from __future__ import annotations

import random
import time
from typing import Any

from harness import LABELS, PREFIX, Agent, Resources, log, site_server, table

from tests.servers import converge, running

TITLE = "Propagation across processes"
TTL = 2.0  # MAINTENANCE_STATE_TTL's default: the bench does not set it
MF = [("setmaintenance", ["setmaintenance"]), ("waffle_switch", ["waffle_switch", "maintenance_mode_site_1"])]
WAFFLE = [("waffle_switch", ["waffle_switch", "maintenance_mode"])]
CONFIGS: list[tuple[str, str, list[tuple[str, list[str]]], int, float]] = [
    # kind, waffle cache, [(label, command without on/off)], repetitions, give up after (s)
    ("mf", "locmem", MF, 2, 8.0),
    ("mf", "redis", MF, 2, 8.0),
    ("waffle", "locmem", WAFFLE, 1, 6.0),
    ("waffle", "redis", WAFFLE, 1, 6.0),
    ("mm", "-", [("maintenance_mode", ["maintenance_mode"])], 1, 6.0),
    ("mm2", "-", [("setmaintenance", ["setmaintenance"])], 1, 6.0),
]


def run(res: Resources, args: Any) -> dict[str, Any]:
    database = res.database("postgres", "propagation")  # one database: the kinds' tables do not clash
    results: list[dict[str, Any]] = []
    for kind, cache, commands, reps, give_up in CONFIGS:
        env = {"BENCH_DB": f"postgres:{database}", "BENCH_WAFFLE_CACHE": cache, "BENCH_REDIS_PREFIX": PREFIX,
               "BENCH_MM_STATE_FILE": str(res.work / "mm-state.txt")}  # fmt: skip
        log(f"propagation: {LABELS[kind]}, cache {cache}")
        toggler = Agent(kind, env)  # migrates before the servers start
        try:
            servers = [site_server(kind, env, 1, f"{kind}-{cache}-{i}") for i in range(2)]
            with running(*servers, timeout=90):
                for label, command in commands:
                    for word, status in [("on", 503), ("off", 200)] * (1 if args.quick else reps):
                        before = 200 if status == 503 else 503
                        if len(converge(servers, before, give_up + TTL, strict=False).elapsed) < len(servers):
                            log(f"  {label} {word}: the servers are not at {before} first; skipped")
                            continue
                        time.sleep(random.uniform(0, 0.5))
                        done = toggler.command(*command, word)
                        seen = converge(servers, status, give_up, since=done, interval=0.01, strict=False).elapsed
                        latencies = [seen.get(s.name) for s in servers]
                        results.append({"kind": kind, "cache": cache, "command": label, "direction": word,
                                        "latencies": latencies, "give_up": give_up})  # fmt: skip
                        log(f"  {label} {word}: " + ", ".join("never" if x is None else f"{x:.2f}s" for x in latencies))
                        if None in latencies and word == "on":
                            toggler.command(*command, "off")  # never seen: put the database back
                            break
        finally:
            toggler.close()
    return {"ttl": TTL, "results": results}


def render(data: dict[str, Any]) -> list[str]:
    rows: dict[tuple[str, str, str, float], dict[str, list[float | None]]] = {}
    for r in data["results"]:
        key = (r["kind"], r["cache"], r["command"], r["give_up"])
        rows.setdefault(key, {"on": [], "off": []})[r["direction"]] += r["latencies"]
    target = data["ttl"] + 0.5

    def fmt(values: list[float | None], limit: float) -> tuple[str, bool]:
        if not values:
            return "–", False
        if None in values:
            return f"> {limit:g} (not seen)", False
        seen = sorted(v for v in values if v is not None)
        return f"{(seen[(len(seen) - 1) // 2] + seen[len(seen) // 2]) / 2:.2f} / {seen[-1]:.2f}", seen[-1] <= target

    lines = []
    for (kind, cache, command, give_up), directions in rows.items():
        (on, on_ok), (off, off_ok) = fmt(directions["on"], give_up), fmt(directions["off"], give_up)
        ok = on_ok and (off_ok or not directions["off"])
        lines.append([LABELS[kind], cache, f"`{command}`", on, off, "yes" if ok else "no"])
    return [
        f"Seconds from the command's return until each of two servers serves the new status (all servers, all "
        f"repetitions); `MAINTENANCE_STATE_TTL` = {data['ttl']:g} s (default), target ≤ {target:g} s.",
        "",
        *table(["Variant", "waffle cache", "toggled with", "→ 503: median / max (s)", "→ 200: median / max (s)",
                f"≤ {target:g} s"], "lllrrc", lines),
    ]  # fmt: skip
