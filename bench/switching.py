"""The stress run: testproject on gunicorn under wrk while a site process flips maintenance with
``setmaintenance`` and a prober notes when each request started and what it got. ``MF_DB``, ``MF_CONN_MAX_AGE``."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter
from typing import Any

from harness import Agent, Resources, table, wrk

from tests.servers import Server, running, status_or_none

TITLE = "Stress: switching under load"
FLIP_EVERY, CONNECTIONS, MARGIN = 1.0, 8, 1.0  # s between flips, wrk connections, follow time allowed beyond the TTL


def run(res: Resources, args: Any) -> dict[str, Any]:
    vendor, conn_max_age = os.environ.get("MF_DB", "postgres"), os.environ.get("MF_CONN_MAX_AGE", "60")
    duration = 6.0 if args.quick else min(max(args.duration, 2.0), 120.0)  # bounded whatever is asked
    env = {"MF_DB": vendor, "MF_DB_NAME": res.database(vendor, "stress"), "MF_STATE_TTL": str(args.ttl),
           "MF_DEBUG": "0", "MF_CONN_MAX_AGE": conn_max_age}  # fmt: skip
    flipper = Agent("mf", env, settings="testproject.settings")  # migrates before the server starts
    server = Server("gunicorn", env, workers=args.workers, name="stress")
    probes: list[tuple[float, int | None]] = []
    flips: list[list[float]] = []  # [started, returned] per command
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            started = time.monotonic()
            probes.append((started, status_or_none(server.port, "/", timeout=10)))
            time.sleep(0.005)

    def flip() -> None:
        argv, count = [["setmaintenance", "on"], ["setmaintenance", "off"]], int(duration / FLIP_EVERY)
        reply = flipper.ask(op="commands", argv=argv, count=count, interval=FLIP_EVERY, timeout=duration + 60)
        flips.extend(reply["times"])

    try:
        with running(server):
            threads = [threading.Thread(target=probe), threading.Thread(target=flip)]
            for thread in threads:
                thread.start()
            started = time.monotonic()
            try:
                load = wrk(server.port, duration, threads=2, connections=CONNECTIONS, timeout=10)
            finally:
                threads[1].join(duration + 60)
                stop.set()
                threads[0].join(30)
            elapsed, ended = time.monotonic() - started, time.monotonic()
            if len(flips) % 2:
                flipper.command("setmaintenance", "off")
        log_errors = server.log().count("Internal Server Error") + server.log().count("Traceback")
    finally:
        flipper.close()
    # Per flip: from its command's return to the start of the last probe that still got the old state, among
    # the probes started before the next command started (that one may commit before it returns).
    lags, unfollowed = [], 0
    for i, ((_, flipped_at), until) in enumerate(zip(flips, [*(s for s, _ in flips[1:]), ended], strict=True)):
        expected = 503 if i % 2 == 0 else 200
        window = [(t, s) for t, s in probes if flipped_at < t < until and s in (200, 503)]
        unfollowed += bool(window and window[-1][1] != expected)  # the next flip came first
        lags.append(max((t - flipped_at for t, s in window if s != expected), default=0.0))
    probed = Counter(str(s) for _, s in probes)
    other_5xx = sum(n for s, n in [*load["statuses"].items(), *probed.items()] if s.isdigit() and 500 <= int(s) != 503)
    errors = load["socket_errors"] + probed.get("None", 0)
    max_lag = max(lags, default=0.0)
    served = Counter(load["statuses"]) + probed
    return {
        "variant": "" if (vendor, conn_max_age) == ("postgres", "60") else f"{vendor}, CONN_MAX_AGE {conn_max_age}",
        "vendor": vendor, "conn_max_age": conn_max_age, "ttl": args.ttl, "workers": args.workers,
        "connections": CONNECTIONS, "elapsed": elapsed, "flip_every": FLIP_EVERY, "flips": len(flips),
        "command_max_s": max((end - start for start, end in flips), default=0.0),
        "wrk": load, "probes": dict(probed), "lags": lags, "unfollowed": unfollowed, "log_errors": log_errors,
        "other_5xx": other_5xx, "socket_errors": errors, "margin": MARGIN,
        "checks": {
            "no 5xx other than 503": other_5xx == 0,
            "no socket errors": errors == 0,
            f"every flip followed within TTL + {MARGIN:g} s": max_lag <= args.ttl + MARGIN and not unfollowed,
            "both states served": bool(served["200"] and served["503"]),
        },
    }  # fmt: skip


def render(data: dict[str, Any]) -> list[str]:
    load, lags, probes = data["wrk"], data["lags"], data["probes"]
    total = sum(load["statuses"].values())
    rows = [
        ("database", f"{data['vendor']}, CONN_MAX_AGE (MF_CONN_MAX_AGE) {data['conn_max_age']} s"),
        ("server", f"gunicorn, {data['workers']} workers × 4 threads, DEBUG off"),
        ("MAINTENANCE_STATE_TTL", f"{data['ttl']} s"),
        ("duration", f"{data['elapsed']:.1f} s"),
        ("flips (on/off, `setmaintenance` from another process)", f"{data['flips']}, every {data['flip_every']} s"),
        ("longest `setmaintenance` (start to return)", f"{data['command_max_s']:.3f} s"),
        ("wrk requests", f"{total} ({total / data['elapsed']:.0f}/s, {data['connections']} connections)"),
        ("wrk 200 / 503", f"{load['statuses'].get('200', 0)} / {load['statuses'].get('503', 0)}"),
        ("wrk latency p50 / p99 / max", " / ".join(f"{load[k] / 1000:.1f} ms" for k in ("p50_us", "p99_us", "max_us"))),
        ("probe requests (200 / 503)", f"{sum(probes.values())} ({probes.get('200', 0)} / {probes.get('503', 0)})"),
        ("other 5xx (must be 0)", str(data["other_5xx"])),
        ("socket errors / timeouts", str(data["socket_errors"])),
        ("max time to follow a flip", f"{max(lags, default=0.0):.3f} s"),
        ("median / p90 time to follow",
         f"{statistics.median(lags):.3f} s / {sorted(lags)[int(0.9 * len(lags))]:.3f} s" if lags else "-"),
        ("flips not followed before the next", str(data["unfollowed"])),
        ("ERROR lines in server log", str(data["log_errors"])),
    ]  # fmt: skip
    checks = [(name, "pass" if ok else "FAIL") for name, ok in data["checks"].items()]
    return [*table(["measure", "value"], "ll", rows), "", *table(["check", "result"], "ll", checks)]
