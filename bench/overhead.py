"""Section 1 and 2: per-request cost through Django's WSGI and ASGI handlers, and queries per request.

One worker process per kind (the peers in their own venvs); the variants are interleaved in a
shuffled order each round, and every figure is the median over the rounds. Ratios are the median
of the per-round ratios to the baseline measured in the same round, which cancels slow drifts.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from common import BENCH, LABELS, ROOT, JsonProcess, env_for, log, median, python_for, spread

BOTH = ("anon", "staff")
ANON = ("anon",)
PATCHES = BENCH / "proposed"

# (row label, worker kind, state, users)
VARIANTS: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
    ("baseline", "baseline", {}, BOTH),
    ("mf off", "mf", {"on": False}, BOTH),
    ("mf on", "mf", {"on": True}, BOTH),
    ("mf off, 50 IgnoredURL", "mf", {"on": False, "ignored": 50}, BOTH),
    ("mf on, 50 IgnoredURL", "mf", {"on": True, "ignored": 50}, BOTH),
    ("mf on, built-in 503 page", "mf", {"on": True, "template": "maintenance_flags/503.html"}, ANON),
    ("mf+patch off", "mfp", {"on": False}, BOTH),
    ("mf+patch on", "mfp", {"on": True}, BOTH),
    ("mf+patch on, built-in 503 page", "mfp", {"on": True, "template": "maintenance_flags/503.html"}, ANON),
    ("waffle off", "waffle", {"on": False}, BOTH),
    ("waffle on", "waffle", {"on": True}, ANON),
    ("mm off", "mm", {"on": False}, BOTH),
    ("mm on", "mm", {"on": True}, BOTH),
    ("mm2 off", "mm2", {"on": False}, BOTH),
    ("mm2 on", "mm2", {"on": True}, BOTH),
]

ROW_LABELS = {
    "baseline": LABELS["baseline"],
    "mf": LABELS["mf"],
    "mfp": LABELS["mfp"],
    "waffle": LABELS["waffle"],
    "mm": LABELS["mm"],
    "mm2": LABELS["mm2"],
}


def patched_tree(tmp: Path) -> Path | None:
    """A copy of maintenance_flags/ with the proposed patches applied, or None if none applies."""
    patches = sorted(PATCHES.glob("*.diff"))
    if not patches:
        return None
    tree = tmp / "patched"
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "maintenance_flags", tree / "maintenance_flags")
    applied = []
    for patch in patches:
        result = subprocess.run(["git", "apply", str(patch)], cwd=tree, capture_output=True, text=True)
        if result.returncode == 0:
            applied.append(patch.name)
        else:
            log(f"proposed patch {patch.name} does not apply (merged already?): {result.stderr.strip()}")
    return tree if applied else None


def run(rounds: int, target_s: float, sqlite_dir: Path) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="mfbench-patch-"))
    workers: dict[str, JsonProcess] = {}
    try:
        tree = patched_tree(tmp)
        variants = [v for v in VARIANTS if v[1] != "mfp" or tree is not None]
        for kind in dict.fromkeys(v[1] for v in variants):
            extra = {"BENCH_DB": str(sqlite_dir / f"{kind}.sqlite3"), "BENCH_MM_STATE_FILE": str(sqlite_dir / "mm.txt")}
            pythonpath = [str(tree)] if kind == "mfp" and tree is not None else None
            log(f"starting worker {kind}")
            workers[kind] = JsonProcess(
                [str(python_for(kind)), str(BENCH / "worker.py")], env_for(kind, extra, pythonpath)
            )
            log(f"  {kind}: Django {workers[kind].hello['django']}")
        cases = [(label, kind, state, server, user) for label, kind, state, users in variants
                 for server in ("wsgi", "asgi") for user in users]  # fmt: skip
        # Calibrate: a batch of each case costs about target_s of CPU.
        sizes: dict[tuple[str, str, str], int] = {}
        for label, kind, state, server, user in cases:
            probe = workers[kind].ask(
                {"op": "time", "state": state, "server": server, "user": user, "n": 20, "warmup": 20}
            )
            sizes[(label, server, user)] = max(20, min(4000, int(target_s / (probe["us"] / 1e6))))
        times: dict[tuple[str, str, str], list[float]] = {k: [] for k in sizes}
        ratios: dict[tuple[str, str, str], list[float]] = {k: [] for k in sizes}
        statuses: dict[tuple[str, str, str], int] = {}
        alone: dict[str, list[float]] = {"mf": [], "mfp": []}
        rng = random.Random(5)
        for r in range(rounds):
            order = cases[:]
            rng.shuffle(order)
            this_round: dict[tuple[str, str, str], float] = {}
            for label, kind, state, server, user in order:
                key = (label, server, user)
                n = sizes[key]
                reply = workers[kind].ask(
                    {"op": "time", "state": state, "server": server, "user": user, "n": n, "warmup": max(5, n // 10)}
                )
                this_round[key] = reply["us"]
                times[key].append(reply["us"])
                statuses[key] = reply["status"]
            for key, us in this_round.items():
                ratios[key].append(us / this_round[("baseline", key[1], key[2])])
            for kind in ("mf", "mfp"):  # the middleware alone, maintenance off: its absolute cost
                if kind in workers:
                    alone[kind].append(workers[kind].ask({"op": "middleware", "state": {"on": False}, "n": 3000})["us"])
            log(f"round {r + 1}/{rounds} done")
        queries: dict[tuple[str, str, str], dict[str, Any]] = {}
        for label, kind, state, server, user in cases:
            queries[(label, server, user)] = workers[kind].ask(
                {"op": "queries", "state": state, "server": server, "user": user, "n": 40, "warmup": 10}
            )
        return {
            "variants": [(label, kind, users) for label, kind, _, users in variants],
            "sizes": sizes,
            "times": times,
            "ratios": ratios,
            "statuses": statuses,
            "queries": queries,
            "rounds": rounds,
            "versions": {kind: w.hello["django"] for kind, w in workers.items()},
            "patched": tree is not None,
            "alone": alone,
        }
    finally:
        for worker in workers.values():
            worker.close()
        shutil.rmtree(tmp, ignore_errors=True)


def profile(kind: str, state: dict[str, Any], server: str, user: str, sqlite_dir: Path, n: int = 2000) -> str:
    """cProfile of one case (used to explain a missed target)."""
    extra = {"BENCH_DB": str(sqlite_dir / f"profile-{kind}.sqlite3")}
    worker = JsonProcess([str(python_for(kind)), str(BENCH / "worker.py")], env_for(kind, extra))
    try:
        reply = worker.ask(
            {"op": "profile", "state": state, "server": server, "user": user, "n": n, "sort": "tottime", "top": 25}
        )
        return str(reply["profile"])
    finally:
        worker.close()


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

    for label, _kind, _users in result["variants"]:
        name = label.replace("mf+patch", ROW_LABELS["mfp"]).replace("mf ", ROW_LABELS["mf"] + " ")
        for prefix in ("waffle", "mm2", "mm"):
            if name.startswith(prefix + " "):
                name = ROW_LABELS[prefix] + name[len(prefix) :]
                break
        if name == "baseline":
            name = ROW_LABELS["baseline"]
        for server in ("wsgi", "asgi"):
            anon, staff = (label, server, "anon"), (label, server, "staff")
            lines.append(
                "| " + " | ".join([name, server.upper(), *cells(anon), *cells(staff), f"{q(anon)} · {q(staff)}"]) + " |"
            )
    return "\n".join(lines)
