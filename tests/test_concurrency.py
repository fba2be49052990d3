"""Many concurrent toggles from several processes while real servers take requests (PostgreSQL).

Three toggler processes start writing at the same instant (``setmaintenance`` and
``waffle_switch``, at random); request threads hit a gunicorn and a uvicorn server all along.
The final switch state must be what some linearisation of the writes leaves (the last write
when writes do not overlap), every server must converge to it within the TTL, and no request
may get a 5xx other than the intended 503, nor a connection error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from maintenance_flags.names import site_switch_name, switch_model
from tests.servers import (
    OK_AND_MAINTENANCE,
    ROOT,
    Server,
    converge,
    db_env,
    fetch,
    report_figure,
    running,
    subprocess_env,
)

pytestmark = [
    pytest.mark.servers,
    pytest.mark.django_db(transaction=True),
    # The concurrency contract is about a real multi-client database: this module is the
    # PostgreSQL leg of the matrix (a choice of parametrisation, not a missing service).
    pytest.mark.skipif(os.environ.get("MF_DB", "sqlite") != "postgres", reason="runs with MF_DB=postgres"),
]

TTL = 1.0
MARGIN = 2.0
TOGGLERS = 3
WRITES_EACH = 15
TOGGLE = "from tests.servers import toggle_main; toggle_main()"


def possible_final_states(writes: list[dict[str, Any]]) -> set[bool]:
    """Values some linearisation may leave last: a write can be last only if no write started after it ended."""
    candidates = set()
    for write in writes:
        later_starts = [w["start"] for w in writes if w is not write and w["start"] > write["end"]]
        if not later_starts:
            candidates.add(bool(write["on"]))
    return candidates


class Traffic:
    """Request threads hitting every server until stopped; records every status and error."""

    def __init__(self, servers: tuple[Server, ...], threads_per_server: int = 2) -> None:
        self.statuses: Counter[int] = Counter()
        self.timeline: list[tuple[float, str, int]] = []  # (request start, server, status)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(server, path), daemon=True)
            for server in servers
            for path in ("/", "/async/")[:threads_per_server]
        ]

    def _run(self, server: Server, path: str) -> None:
        deadline = time.monotonic() + 120  # bounded whatever happens
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                status = fetch(server.port, path, timeout=10).status
            except OSError as exc:
                with self._lock:
                    self.errors.append(f"{server.name} {path}: {exc!r}")
                continue
            with self._lock:
                self.statuses[status] += 1
                self.timeline.append((started, server.name, status))
            time.sleep(0.01)  # steady traffic, without starving the 2-core machine

    def lag_after(self, since: float, expected: int) -> float:
        """How long after ``since`` a request could still start and get the other state."""
        with self._lock:
            stale = [started - since for started, _, status in self.timeline if started > since and status != expected]
        return max(stale, default=0.0)

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def test_concurrent_toggles_end_in_the_last_write_everywhere() -> None:
    env = {**db_env(connection.settings_dict), "MF_STATE_TTL": str(TTL)}
    servers = (Server("gunicorn", env, name="gunicorn"), Server("uvicorn", env, name="uvicorn"))
    barrier_dir = tempfile.TemporaryDirectory(prefix="mf_barrier_")
    barrier = barrier_dir.name + "/b"
    with barrier_dir, running(*servers), Traffic(servers) as traffic:
        # Both states are served before the storm: off (as migrated), then on.
        converge(servers, 200, TTL + MARGIN)
        switch = switch_model().objects.get(name=site_switch_name(1))
        switch.active = True
        switch.save()
        converge(servers, 503, TTL + MARGIN)
        togglers = [
            subprocess.Popen(
                [sys.executable, "-c", TOGGLE, str(seed), str(WRITES_EACH), barrier],
                env=subprocess_env(env),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for seed in range(TOGGLERS)
        ]
        try:
            deadline = time.monotonic() + 60
            while len(list(Path(barrier).parent.glob("b.ready.*"))) < TOGGLERS:
                assert time.monotonic() < deadline, "togglers did not start"
                assert all(p.poll() is None for p in togglers), [p.communicate() for p in togglers]
                time.sleep(0.02)
            Path(f"{barrier}.go").touch()
            outputs = [p.communicate(timeout=120) for p in togglers]
        finally:
            for p in togglers:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        for p, (_, err) in zip(togglers, outputs, strict=True):
            assert p.returncode == 0, err
        writes = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
        assert len(writes) == TOGGLERS * WRITES_EACH
        done = max(w["end"] for w in writes)

        rows = list(switch_model().objects.filter(name=site_switch_name(1)))
        assert len(rows) == 1
        final = rows[0].active
        assert final in possible_final_states(writes), (final, sorted(writes, key=lambda w: w["end"])[-4:])
        expected = 503 if final else 200
        converge(servers, expected, TTL + MARGIN)
        time.sleep(max(0.0, done + TTL + MARGIN + 0.3 - time.monotonic()))  # traffic past the bound
        lag = traffic.lag_after(done, expected)
        report_figure("concurrency", "converged after last write (s)", round(lag, 3))
        assert lag <= TTL + MARGIN
    assert not traffic.errors, traffic.errors[:5]
    assert set(traffic.statuses) <= OK_AND_MAINTENANCE, traffic.statuses
    report_figure("concurrency", "requests", sum(traffic.statuses.values()))
    for server in servers:
        assert "Internal Server Error" not in server.log()
