"""The load harness: ``make bench`` (every section), ``make bench-quick`` (a smoke run), ``make stress``.

Each section's raw figures go to bench/results.json (a run replaces the sections it ran, with the date,
machine and command); bench/results.md is rendered from that file. ``--quick`` prints the report and writes
nothing unless ``--output`` is given. The exit status is 1 when a check of the stress section fails.
Method: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import background
import fleet
import overhead
import propagation
import switching
import throughput
from harness import BENCH, PEERS, Resources, log, machine, python_for

SECTIONS = {
    "overhead": overhead,
    "propagation": propagation,
    "throughput": throughput,
    "stress": switching,
    "celery": background,
    "fleet": fleet,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="2 rounds, short loads: checks the harness")
    parser.add_argument("--output", help="directory for results.md/.json (default: bench/, none with --quick)")
    parser.add_argument("--rounds", type=int, default=6, help="overhead, celery (10 at least): rounds")
    parser.add_argument("--duration", type=float, default=20.0, help="stress: seconds of load (2-120)")
    parser.add_argument("--ttl", type=float, default=0.5, help="stress: MAINTENANCE_STATE_TTL of the server")
    parser.add_argument("--workers", type=int, default=2, help="stress: gunicorn worker processes (4 threads each)")
    args = parser.parse_args()
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    if unknown := set(names) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    for kind in PEERS if {"overhead", "propagation"} & set(names) else ():
        python_for(kind)
    command = "make bench-quick" if args.quick else " ".join(["bench/run.py", *sys.argv[1:]])
    results: dict[str, Any] = {}
    res = Resources()
    try:
        for name in names:
            log(f"== {name}")
            started, info = time.monotonic(), machine()
            data = SECTIONS[name].run(res, args)
            key = f"{name} ({data['variant']})" if data.get("variant") else name  # e.g. MF_CONN_MAX_AGE=0
            results[key] = {"section": name, "command": command, "seconds": round(time.monotonic() - started),
                            **info, "data": data}  # fmt: skip
    finally:
        res.close()
    failed = any(not all(entry["data"].get("checks", {}).values()) for entry in results.values())
    output = Path(args.output) if args.output else None if args.quick else BENCH
    if output is not None:
        stored_path = output / "results.json"
        stored = json.loads(stored_path.read_text()) if stored_path.exists() else {}
        results = {**stored.get("sections", {}), **results}
        stored_path.write_text(json.dumps({"sections": results}, indent=1) + "\n")
    text = render(results)
    print(text)
    if output is not None:
        (output / "results.md").write_text(text)
        log(f"wrote {output / 'results.md'} and results.json")
    return 1 if failed else 0


def render(results: dict[str, Any]) -> str:
    lines = [
        "# maintenance_flags: load harness results",
        "",
        "Written by `bench/run.py` from `bench/results.json`; what each section measures and how: "
        "[bench/README.md](README.md). Other work on the machine adds noise: figures are medians of interleaved "
        "rounds, and nothing asserts a time.",
    ]
    order = list(SECTIONS)
    for key, entry in sorted(results.items(), key=lambda item: (order.index(item[1]["section"]), item[0])):
        module = SECTIONS[entry["section"]]
        lines += [
            "",
            f"## {module.TITLE}{key.removeprefix(entry['section'])}",
            "",
            f"_Measured {entry['date']} by `{entry['command']}` in {entry['seconds']} s on {entry['cpu']}, "
            f"{entry['os']}, Python {entry['python']}, {entry['postgresql']}, {entry['redis']}, {entry['wrk']} "
            f"({entry['load']})._",
            "",
            *module.render(entry["data"]),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
