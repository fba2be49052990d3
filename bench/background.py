"""Celery (maintenance_flags.contrib.celery): what the worker guard costs per task, and how fast workers pause
and resume. Real workers of testproject.celery_app (tests/celery_support.py) on Redis and a PostgreSQL database
made for the run. Named background.py: a bench/celery.py would shadow the celery package."""

from __future__ import annotations

import contextlib
import os
import random
import re
import time
from pathlib import Path
from typing import Any

import psycopg
import redis
from celery import Celery
from harness import Resources, log, median, spread, table

from tests.celery_support import BROKERS, INFO_LOGGING, Broker, CeleryProcess, Journal, worker
from tests.servers import manage, wait_until

TITLE = "Background work (Celery worker guard)"
TICK = 0.5  # maintenance_flags.contrib.celery.TICK
TTL = float(os.environ.get("MF_STATE_TTL", "2"))  # the workers' MAINTENANCE_STATE_TTL (default 2 s)
HELD = 4  # tasks sent during each maintenance
LOGGING = {**INFO_LOGGING, "formatters": {"t": {"format": "%(created).3f %(message)s"}},  # Unix time of a line
           "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "t"}},
           "loggers": {**INFO_LOGGING["loggers"], "celery.app.trace": {"level": "WARNING"},  # "Task … succeeded"
                       "celery.worker.strategy": {"level": "WARNING"}}}  # "Task … received"  # fmt: skip


def cpu_ns(w: CeleryProcess) -> int:
    """CPU time of a worker process, every thread, in ns (schedstat: finer than /proc/<pid>/stat's ticks)."""
    assert w.process is not None
    total = 0
    for task in Path(f"/proc/{w.process.pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


def workers(
    stack: contextlib.ExitStack, env: dict[str, str], broker: Broker, queues: dict[str, Any], solo: bool
) -> dict[str, CeleryProcess]:
    """Start a worker per name (its queue, its environment), stopped when ``stack`` closes."""
    made = {name: worker(env | extra, broker, [queue], {"LOGGING": LOGGING}) for name, (queue, extra) in queues.items()}
    for w in made.values():
        if solo:  # else tests/celery_support.py's: prefork, 2 processes
            w.args = [a for a in w.args if not a.startswith(("--pool", "--concurrency"))] + ["--pool=solo"]
        stack.callback(w.stop)
        w.start()
    for w in made.values():
        w.wait_for("ready.", timeout=90)
    return made


def drain(
    pair: dict[str, tuple[CeleryProcess, str]], n: int, key: str, sender: Celery, client: redis.Redis
) -> dict[str, float]:
    """N no-op tasks and a last ``record`` per worker, queued under other names and renamed onto the workers'
    queues at once (one MULTI): each worker's CPU µs per task until its last has run (in order)."""
    for name, (_, queue) in pair.items():
        for _ in range(n):
            sender.send_task("testproject.noop", queue=f"{queue}-staging")
        sender.send_task("testproject.record", args=[key, name], queue=f"{queue}-staging")
    cpu, done = {name: cpu_ns(w) for name, (w, _) in pair.items()}, {}
    with client.pipeline() as multi:
        for _, queue in pair.values():
            multi.rename(f"{queue}-staging", queue)
        multi.execute()
    while len(done) < len(pair):
        if not (popped := client.blpop([key], timeout=120)):
            raise RuntimeError("the tasks did not run within 120 s")
        name = popped[1].decode().split()[0]
        done[name] = (cpu_ns(pair[name][0]) - cpu[name]) / n / 1e3
    return done


def pin(w: CeleryProcess, cpu: int) -> None:
    """Every thread of the worker on one CPU."""
    assert w.process is not None
    for task in Path(f"/proc/{w.process.pid}/task").glob("*"):
        os.sched_setaffinity(int(task.name), {cpu})


def written(database: str) -> float:
    """When setmaintenance wrote the switch: waffle's ``modified``, set as it saves (Unix time)."""
    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database) as conn:
        row = conn.execute("SELECT modified FROM waffle_switch WHERE name = 'maintenance_mode_site_1'").fetchone()
    assert row is not None
    return float(row[0].timestamp())


def logged(w: CeleryProcess, text: str, count: int) -> float | None:
    """The Unix time of a worker's ``count``-th log line ``text`` (None if not within TTL + 10 s)."""
    with contextlib.suppress(AssertionError):
        wait_until(lambda: len(re.findall(rf"(\d+\.\d+) {text}", w.log())) >= count, TTL + 10, interval=0.02)
        return float(re.findall(rf"(\d+\.\d+) {text}", w.log())[count - 1])
    return None


def run(res: Resources, args: Any) -> dict[str, Any]:
    rounds, n, reps = (2, 200, 1) if args.quick else (max(args.rounds, 10), 2000, 5)
    database = res.database("postgres", "celery")
    env = {"MF_DB": "postgres", "MF_DB_NAME": database}
    manage("migrate", "-v0", env=env, timeout=120)
    broker = Broker("redis", BROKERS["redis"])
    client, sender = redis.Redis.from_url(BROKERS["redis"], socket_timeout=180), broker.sender()
    queues = {name: broker.queue(name) for name in ("unguarded", "guarded", "held")}
    cost: dict[str, list[float]] = {"unguarded": [], "guarded": []}
    cpus = sorted(os.sched_getaffinity(0))
    ratios: list[float] = []
    times: list[dict[str, Any]] = []
    try:
        log(f"celery: per-task cost, {rounds} rounds of {n} no-op tasks on each worker")
        with contextlib.ExitStack() as stack:
            made = workers(stack, env, broker, {"unguarded": (queues["unguarded"], {"MF_CELERY_UNGUARDED": "1"}),
                                                "guarded": (queues["guarded"], {})}, solo=True)  # fmt: skip
            pair = {name: (w, queues[name]) for name, w in made.items()}
            drain(pair, n, broker.journal_key, sender, client)  # warm up: not counted
            for r in range(rounds):
                for w in made.values():  # both on one CPU, another each round: what slows it slows both
                    pin(w, cpus[r % len(cpus)])
                for name, cpu in drain(pair, n, broker.journal_key, sender, client).items():
                    cost[name].append(cpu)
                ratios.append(cost["guarded"][-1] / cost["unguarded"][-1])
                log(f"  round {r + 1}: guarded ÷ unguarded {ratios[-1]:.3f}")
            before = {name: cpu_ns(w) for name, w in made.items()}
            time.sleep(2 * TTL)  # at rest: the guard's looks at the state
            idle = {name: (cpu_ns(w) - before[name]) / 2 / TTL / 1e6 for name, w in made.items()}
        log(f"celery: pause and resume, {reps} times, 2 guarded workers")
        with contextlib.ExitStack() as stack:
            guarded = list(
                workers(stack, env, broker, {"1": (queues["held"], {}), "2": (queues["held"], {})}, False).values()
            )
            journal = Journal(broker.journal_key)
            for rep in range(reps):
                time.sleep(random.uniform(0, TTL + TICK))  # any phase of the workers' state refreshes
                manage("setmaintenance", "on", env=env)
                on_at = written(database)
                paused = [logged(w, "Celery worker paused", rep + 1) for w in guarded]
                labels = {f"held-{rep}-{i}" for i in range(HELD)}
                for label in sorted(labels):
                    sender.send_task("testproject.record", args=[journal.key, label], queue=queues["held"])
                time.sleep(random.uniform(0, TTL + TICK))
                manage("setmaintenance", "off", env=env)
                off_at = written(database)
                resumed = [logged(w, "Celery worker resumed", rep + 1) for w in guarded]
                wait_until(lambda: labels <= set(journal.finished()), TTL + 20, what="the held tasks run")  # noqa: B023
                starts = [t for label, runs in journal.started().items() if label in labels for t in runs]
                times.append({"paused": None if None in paused else max(filter(None, paused)) - on_at,
                              "resumed": None if None in resumed else max(filter(None, resumed)) - off_at,
                              "first_task": min(starts) - off_at, "early": sum(t < off_at for t in starts),
                              "runs": len(starts)})  # fmt: skip
                log(f"  {rep + 1}: {times[-1]}")
    finally:
        client.close()
        names = [*queues.values(), *(f"{q}-staging" for q in queues.values())]  # and kombu's bindings of each
        broker.cleanup([*names, *(f"_kombu.{kind}.{q}" for q in names for kind in ("binding", "binding_permanent"))])
    return {"tasks": n, "rounds": rounds, "ttl": TTL, "tick": TICK, "held": HELD, "cost": cost, "ratios": ratios,
            "idle_ms": idle, "times": times, "load_after": os.getloadavg()}  # fmt: skip


def render(data: dict[str, Any]) -> list[str]:
    cost, ratio, target, t = data["cost"], median(data["ratios"]), data["ttl"] + 1, data["times"]
    rows = [[name, f"{median(c):.1f} (±{spread(c):.1f} %)", f"{data['idle_ms'][name]:.1f}"] for name, c in cost.items()]

    def row(label: str, values: list[float | None]) -> list[str]:
        if None in values or not values:
            return [label, "not seen", "", "no"]
        seen = [v for v in values if v is not None]
        return [label, f"{median(seen):.2f}", f"{max(seen):.2f}", "yes" if max(seen) <= target else "no"]

    return [
        f"**Per-task cost** (`--pool=solo`, {data['rounds']} rounds of {data['tasks']} `testproject.noop` tasks "
        "draining side by side on one CPU): CPU time of each worker per task, and at rest (the guard looks at the "
        f"state every {data['tick']:g} s). Load average after: {' '.join(f'{x:.2f}' for x in data['load_after'])}.",
        "",
        *table(["Worker", "CPU µs per task: median (±%)", "at rest: CPU ms per s"], "lrr", rows),
        "",
        f"Guarded ÷ unguarded, the median of per-round ratios: **{ratio:.3f}×** (±{spread(data['ratios']):.1f} %); "
        f"goal ≤ 1.02×: {'met' if ratio <= 1.02 else 'not met'}.",
        "",
        f"**Pause and resume** (two guarded prefork workers, {len(t)} times): seconds from `setmaintenance`'s write "
        f"to the worker's log line or the task's start; `MAINTENANCE_STATE_TTL` = {data['ttl']:g} s. Of "
        f"{data['held']} tasks sent during each maintenance, {sum(x['early'] for x in t)} started before `off`; "
        f"{sum(x['runs'] for x in t)} runs of {data['held'] * len(t)}.",
        "",
        *table(["From → to", "median (s)", "max (s)", f"≤ TTL + 1 s ({target:g})"], "lrrc", [
            row("`on` → the last of 2 workers paused", [x["paused"] for x in t]),
            row("`off` → the last worker resumed", [x["resumed"] for x in t]),
            row("`off` → the first held task started", [x["first_task"] for x in t]),
        ]),
    ]  # fmt: skip
