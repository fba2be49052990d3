"""Per-request CPU cost through Django's WSGI/ASGI handlers, in-process, and queries per request: one site
process per worker below, the variants interleaved in a shuffled order each round; a figure is the median
over rounds, a ratio the median of per-round ratios to that round's baseline."""

from __future__ import annotations

import random
from typing import Any

from harness import LABELS, PEERS, Agent, Resources, log, median, spread, table

TITLE = "Per-request cost (whole Django stack, in-process)"
BOTH, ANON, SERVERS = ("anon", "staff"), ("anon",), ("wsgi", "asgi")
WORKERS: dict[str, tuple[str, dict[str, str], bool | None]] = {  # name: kind, environment, built-in page?
    "baseline": ("baseline", {}, None),
    "mf": ("mf", {}, False),  # renders the project's templates/503.html, like every other kind
    "mf-builtin": ("mf", {"BENCH_PROJECT_TEMPLATES": "0"}, True),  # no project 503.html: the built-in page
    "mf-prerender": ("mf", {"BENCH_503_PRERENDER": "1"}, False),  # the project's 503.html, made once per state
    "waffle": ("waffle", {}, None),
    "mm": ("mm", {}, None),
    "mm2": ("mm2", {}, None),
}
VARIANTS: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [  # row label, worker, state, users
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


def run(res: Resources, args: Any) -> dict[str, Any]:
    rounds, batch_s = (2, 0.1 / 3) if args.quick else (args.rounds, 0.1)  # CPU seconds per timed batch
    agents: dict[str, Agent] = {}
    try:
        for name, (kind, env, builtin) in WORKERS.items():
            log(f"starting worker {name}")
            db = {"BENCH_DB": str(res.work / f"{name}.sqlite3"), "BENCH_MM_STATE_FILE": str(res.work / "mm.txt")}
            agents[name] = agent = Agent(kind, {**db, **env})
            if builtin is not None and agent.hello["builtin_page"] != builtin:  # a wrong setup is an error
                raise RuntimeError(f"worker {name} serves the built-in page: {agent.hello['builtin_page']}")
        cases = [{"label": label, "worker": name, "state": state, "server": server, "user": user}
                 for label, name, state, users in VARIANTS for server in SERVERS for user in users]  # fmt: skip
        for case in cases:  # calibrate: a batch costs about batch_s of CPU
            probe = ask(agents, case, "time", n=20, warmup=20)
            case.update(n=max(20, min(4000, int(batch_s / (probe["us"] / 1e6)))), cpu_us=[], ratio=[])
        alone: list[float] = []
        in_stack: dict[str, list[float]] = {"ours": [], "empty": [], "bare": []}
        rng = random.Random(5)
        for r in range(rounds):
            for case in rng.sample(cases, len(cases)):
                reply = ask(agents, case, "time", n=case["n"], warmup=max(5, case["n"] // 10))
                case["cpu_us"].append(reply["us"])
                case["status"] = reply["status"]
            base = {(c["server"], c["user"]): c["cpu_us"][-1] for c in cases if c["label"] == "baseline"}
            for case in cases:
                case["ratio"].append(case["cpu_us"][-1] / base[(case["server"], case["user"])])
            # The middleware alone, maintenance off; and what it adds to a whole request (paired batches).
            alone.append(agents["mf"].ask(op="middleware", state={"on": False}, n=3000)["us"])
            for key, values in agents["mf"].ask(op="in_stack", state={"on": False}, n=2000, pairs=3).items():
                in_stack[key] += values
            log(f"round {r + 1}/{rounds} done")
        for case in cases:
            reply = ask(agents, case, "queries", n=40, warmup=10)
            case.update(queries=reply["queries"], app_queries=reply["app_queries"])
        return {
            "rounds": rounds,
            "cases": cases,
            "django": {name: a.hello["django"] for name, a in agents.items()},
            "pages": {n: [a.hello["builtin_page"], a.hello["page_reused"]] for n, a in agents.items() if n[:2] == "mf"},
            "alone": alone,
            "in_stack": in_stack,
        }
    finally:
        for agent in agents.values():
            agent.close()


def ask(agents: dict[str, Agent], case: dict[str, Any], op: str, **kw: Any) -> dict[str, Any]:
    return agents[case["worker"]].ask(op=op, state=case["state"], server=case["server"], user=case["user"], **kw)


def render(data: dict[str, Any]) -> list[str]:
    cases = {(c["label"], c["server"], c["user"]): c for c in data["cases"]}

    def cells(case: dict[str, Any] | None) -> list[str]:
        if case is None:
            return ["", "", ""]
        cpu, ratios = case["cpu_us"], case["ratio"]
        return [f"{median(cpu):.0f} ±{spread(cpu):.0f}%", f"{median(ratios):.2f}× ±{spread(ratios):.0f}%",
                str(case["status"])]  # fmt: skip

    def queries(case: dict[str, Any] | None) -> str:
        total, app = (case["queries"], case["app_queries"]) if case else (None, None)
        return "–" if case is None else f"{total:.2g}" if total == app else f"{total:.2g} ({app:.2g})"

    rows = []
    for label, _, _, _ in VARIANTS:
        prefix, _, rest = label.partition(" ")
        for server in SERVERS:
            anon, staff = cases.get((label, server, "anon")), cases.get((label, server, "staff"))
            name = " ".join([LABELS[prefix], rest]).strip()
            rows.append([name, server.upper(), *cells(anon), *cells(staff), f"{queries(anon)} · {queries(staff)}"])
    peers = ", ".join(f"{LABELS[k]} (Django {v})" for k, v in data["django"].items() if k in PEERS)
    pages = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in data["pages"].items())
    lines = [
        f"{data['rounds']} interleaved rounds; CPU time of the process per request, median ±half the interquartile "
        f"range; × baseline: median of per-round ratios. Peers: {peers}. Built-in page / page reused: {pages}.",
        "",
        *table(["Variant", "Server", "anonymous: CPU µs/request", "× baseline", "status", "staff: CPU µs/request",
                "× baseline", "status", "queries/request anon · staff (of which the app's)"], "llrrcrrcl", rows),
        "",
        "Targets for maintenance_flags:",
        "",
    ]  # fmt: skip
    for server in SERVERS:
        labels = ("mf off", "mf on", "mf on, built-in page", "mf on, project page prerendered")
        off, on, builtin, pre = (median(cases[(label, server, "anon")]["ratio"]) for label in labels)
        lines.append(
            f"- {server.upper()}: maintenance off {off:.3f}× baseline (target ≤ 1.02: {met(off <= 1.02)}); anonymous "
            f"503 path (target ≤ 1.00× the baseline's 200 path): {builtin:.2f}× with the built-in page "
            f"({met(builtin <= 1)}), {pre:.2f}× with the project's 503.html prerendered ({met(pre <= 1)}); {on:.2f}× "
            "with the project's 503.html rendered with the request each time (no target: a template rendering "
            "costs more than the baseline's whole request)."
        )
    ours, empty, bare = (median(data["in_stack"][k]) for k in ("ours", "empty", "bare"))
    q = [cases[(label, "wsgi", "anon")]["app_queries"] for label in ("mf off", "mf on", "mf on, built-in page")]
    return [
        *lines,
        f"- the middleware, maintenance off, adds {ours:.1f} µs to a whole WSGI request (median of "
        f"{len(data['in_stack']['ours'])} paired batches in one process against the same stack without it; an empty "
        f"middleware adds {empty:.1f} µs) = {ours / bare * 100:.1f} % of that request ({bare:.0f} µs; target ≤ 2 %: "
        f"{met(ours / bare <= 0.02)}); called alone with warm caches it costs {median(data['alone']):.1f} µs.",
        "- queries by maintenance_flags per request at steady state: {:.2g} off, {:.2g} on, {:.2g} on with the "
        "built-in page (target 0; staff rows show Django's own session and user loads).".format(*q),
    ]


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"
