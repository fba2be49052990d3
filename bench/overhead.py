"""Section 1 and 2: per-request cost through Django's WSGI and ASGI handlers, and queries per request.

One worker process per kind of site (the peers in their own venvs; maintenance_flags twice: with the
project's 503.html, which every kind renders, and with no project 503.html, so its built-in page). The
variants are interleaved in a shuffled order each round, and every figure is the median over the
rounds. Ratios are the median of the per-round ratios to the baseline measured in the same round,
which cancels slow drifts.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from common import BENCH, LABELS, JsonProcess, env_for, log, median, python_for, spread

BOTH = ("anon", "staff")
ANON = ("anon",)

# One worker process each: worker name -> (kind, extra environment).
WORKERS: dict[str, tuple[str, dict[str, str]]] = {
    "baseline": ("baseline", {}),
    "mf": ("mf", {}),  # renders the project's templates/503.html, like every other kind
    "mf-builtin": ("mf", {"BENCH_PROJECT_TEMPLATES": "0"}),  # no project 503.html: the built-in page
    "mf-prerender": ("mf", {"BENCH_503_PRERENDER": "1"}),  # the project's 503.html, rendered once per state
    "waffle": ("waffle", {}),
    "mm": ("mm", {}),
    "mm2": ("mm2", {}),
}

# (row label, worker, state, users)
VARIANTS: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
    ("baseline", "baseline", {}, BOTH),
    ("mf off", "mf", {"on": False}, BOTH),
    ("mf on", "mf", {"on": True}, BOTH),
    ("mf on, built-in page", "mf-builtin", {"on": True}, ANON),
    ("mf on, project page prerendered", "mf-prerender", {"on": True}, ANON),
    ("mf off, 50 IgnoredURL", "mf", {"on": False, "ignored": 50}, BOTH),
    ("mf on, 50 IgnoredURL", "mf", {"on": True, "ignored": 50}, BOTH),
    ("waffle off", "waffle", {"on": False}, BOTH),
    ("waffle on", "waffle", {"on": True}, ANON),
    ("mm off", "mm", {"on": False}, BOTH),
    ("mm on", "mm", {"on": True}, BOTH),
    ("mm2 off", "mm2", {"on": False}, BOTH),
    ("mm2 on", "mm2", {"on": True}, BOTH),
]

# Which page each maintenance_flags worker must serve (checked at start: a wrong setup is an error).
EXPECT_BUILTIN = {"mf": False, "mf-builtin": True, "mf-prerender": False}
EXPECT_REUSED = {"mf": False, "mf-builtin": True, "mf-prerender": True}


def run(rounds: int, target_s: float, sqlite_dir: Path) -> dict[str, Any]:
    workers: dict[str, JsonProcess] = {}
    try:
        for name in dict.fromkeys(v[1] for v in VARIANTS):
            kind, env = WORKERS[name]
            extra = {
                "BENCH_DB": str(sqlite_dir / f"{name}.sqlite3"),
                "BENCH_MM_STATE_FILE": str(sqlite_dir / "mm.txt"),
                **env,
            }
            log(f"starting worker {name}")
            workers[name] = JsonProcess([str(python_for(kind)), str(BENCH / "worker.py")], env_for(kind, extra))
            hello = workers[name].hello
            log(f"  {name}: Django {hello['django']}, built-in 503 page: {hello.get('builtin_page')}")
            if name in EXPECT_BUILTIN and hello.get("builtin_page") != EXPECT_BUILTIN[name]:
                raise RuntimeError(
                    f"worker {name}: the built-in page is {hello.get('builtin_page')}, expected {EXPECT_BUILTIN[name]}"
                )
            if name in EXPECT_REUSED and hello.get("page_reused") != EXPECT_REUSED[name]:
                raise RuntimeError(
                    f"worker {name}: page reuse is {hello.get('page_reused')}, expected {EXPECT_REUSED[name]}"
                )
        cases = [(label, name, state, server, user) for label, name, state, users in VARIANTS
                 for server in ("wsgi", "asgi") for user in users]  # fmt: skip
        # Calibrate: a batch of each case costs about target_s of CPU.
        sizes: dict[tuple[str, str, str], int] = {}
        for label, name, state, server, user in cases:
            probe = workers[name].ask(
                {"op": "time", "state": state, "server": server, "user": user, "n": 20, "warmup": 20}
            )
            sizes[(label, server, user)] = max(20, min(4000, int(target_s / (probe["us"] / 1e6))))
        times: dict[tuple[str, str, str], list[float]] = {k: [] for k in sizes}
        ratios: dict[tuple[str, str, str], list[float]] = {k: [] for k in sizes}
        statuses: dict[tuple[str, str, str], int] = {}
        alone: list[float] = []
        in_stack: dict[str, list[float]] = {"ours": [], "empty": [], "bare": []}
        rng = random.Random(5)
        for r in range(rounds):
            order = cases[:]
            rng.shuffle(order)
            this_round: dict[tuple[str, str, str], float] = {}
            for label, name, state, server, user in order:
                key = (label, server, user)
                n = sizes[key]
                reply = workers[name].ask(
                    {"op": "time", "state": state, "server": server, "user": user, "n": n, "warmup": max(5, n // 10)}
                )
                this_round[key] = reply["us"]
                times[key].append(reply["us"])
                statuses[key] = reply["status"]
            for key, us in this_round.items():
                ratios[key].append(us / this_round[("baseline", key[1], key[2])])
            # The middleware alone, maintenance off: its absolute cost.
            alone.append(workers["mf"].ask({"op": "middleware", "state": {"on": False}, "n": 3000})["us"])
            # ... and what it adds to the whole request, against the same stack without it.
            diffs = workers["mf"].ask({"op": "in_stack", "state": {"on": False}, "n": 2000, "pairs": 3})
            in_stack["ours"] += diffs["ours"]
            in_stack["empty"] += diffs["empty"]
            in_stack["bare"] += diffs["bare"]
            log(f"round {r + 1}/{rounds} done")
        queries: dict[tuple[str, str, str], dict[str, Any]] = {}
        for label, name, state, server, user in cases:
            queries[(label, server, user)] = workers[name].ask(
                {"op": "queries", "state": state, "server": server, "user": user, "n": 40, "warmup": 10}
            )
        return {
            "variants": [(label, name, users) for label, name, _, users in VARIANTS],
            "sizes": sizes,
            "times": times,
            "ratios": ratios,
            "statuses": statuses,
            "queries": queries,
            "rounds": rounds,
            "versions": {name: w.hello["django"] for name, w in workers.items()},
            "builtin_page": {name: w.hello.get("builtin_page") for name, w in workers.items()},
            "page_reused": {name: w.hello.get("page_reused") for name, w in workers.items()},
            "alone": alone,
            "in_stack": in_stack,
        }
    finally:
        for worker in workers.values():
            worker.close()


def profile(name: str, state: dict[str, Any], server: str, user: str, sqlite_dir: Path, n: int = 2000) -> str:
    """cProfile of one case (used to explain a missed target)."""
    kind, env = WORKERS[name]
    extra = {"BENCH_DB": str(sqlite_dir / f"profile-{name}.sqlite3"), **env}
    worker = JsonProcess([str(python_for(kind)), str(BENCH / "worker.py")], env_for(kind, extra))
    try:
        reply = worker.ask(
            {"op": "profile", "state": state, "server": server, "user": user, "n": n, "sort": "tottime", "top": 25}
        )
        return str(reply["profile"])
    finally:
        worker.close()


def row_name(label: str) -> str:
    """'mf on, built-in page' -> 'maintenance_flags on, built-in page'."""
    prefix, _, rest = label.partition(" ")
    return LABELS[prefix] + (" " + rest if rest else "")


def table(result: dict[str, Any]) -> str:
    times, ratios, statuses, queries = result["times"], result["ratios"], result["statuses"], result["queries"]
    lines = [
        "| Variant | Server | anonymous: CPU µs/request | × baseline | status | staff: CPU µs/request | × baseline "
        "| status | queries/request anon · staff (of which the app's) |",
        "| --- | --- | ---: | ---: | :---: | ---: | ---: | :---: | --- |",
    ]

    def cells(key: tuple[str, str, str]) -> list[str]:
        if key not in times:
            return ["", "", ""]
        return [
            f"{median(times[key]):.0f} ±{spread(times[key]):.0f}%",
            f"{median(ratios[key]):.2f}× ±{spread(ratios[key]):.0f}%",
            str(statuses[key]),
        ]

    def q(key: tuple[str, str, str]) -> str:
        if key not in queries:
            return "–"
        total, app = queries[key]["queries"], queries[key]["app_queries"]
        return f"{total:.2g}" if total == app else f"{total:.2g} ({app:.2g})"

    for label, _name, _users in result["variants"]:
        name = row_name(label)
        for server in ("wsgi", "asgi"):
            anon, staff = (label, server, "anon"), (label, server, "staff")
            lines.append(
                "| " + " | ".join([name, server.upper(), *cells(anon), *cells(staff), f"{q(anon)} · {q(staff)}"]) + " |"
            )
    return "\n".join(lines)
