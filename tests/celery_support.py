"""Real Celery worker and beat processes for the background-work tests and the benchmark.

Each test gets unique queue names and a unique Redis journal key, on Redis or RabbitMQ, so that
parallel runs never share a message; every process is stopped by its own process group.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from kombu import Connection, Queue

from tests.servers import BIN, ROOT, settings_module, stop_group, subprocess_env, wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"
BROKERS = {"redis": "redis://127.0.0.1:6379/0", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//"}
INFO_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"maintenance_flags": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}


@dataclass
class Broker:
    """A broker URL and the names a test owns on it (queues, journal key), removed afterwards."""

    kind: str
    url: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def queue(self, name: str) -> str:
        return f"mf-{self.tag}-{name}"

    @property
    def journal_key(self) -> str:
        return f"mf-journal-{self.tag}"

    def sender(self) -> Celery:
        """A Celery app in this process that sends tasks by name (it never runs one)."""
        app = Celery(f"mf-sender-{self.tag}", broker=self.url, set_as_current=False)
        app.conf.broker_connection_retry_on_startup = True
        return app

    def cleanup(self, queues: list[str]) -> None:
        client = redis.Redis.from_url(REDIS_URL)
        keys = [self.journal_key, f"{self.journal_key}:started"]
        if self.kind == "redis":
            keys += queues
            # and what declaring a queue adds
            keys += [f"_kombu.{kind}.{name}" for kind in ("binding", "binding_permanent") for name in queues]
        client.delete(*keys)
        client.close()
        if self.kind == "rabbitmq":
            with Connection(self.url) as conn:
                channel = conn.channel()
                for name in queues:
                    with contextlib.suppress(Exception):
                        Queue(name, channel=channel).delete()


@dataclass
class Journal:
    """What the tasks wrote down: "label started finished" per run (testproject.tasks.record)."""

    key: str

    def _read(self, key: str) -> list[list[str]]:
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            return [str(entry).split() for entry in client.lrange(key, 0, -1)]
        finally:
            client.close()

    def finished(self) -> list[str]:
        return [entry[0] for entry in self._read(self.key)]

    def started(self) -> dict[str, list[float]]:
        """label -> the times it started (a label started twice was run twice)."""
        runs: dict[str, list[float]] = {}
        for label, started in self._read(f"{self.key}:started"):
            runs.setdefault(label, []).append(float(started))
        return runs


@dataclass
class CeleryProcess:
    """``celery -A testproject.celery_app worker`` (or ``beat``) on the test database."""

    env: dict[str, str]
    args: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    name: str = "worker"
    process: subprocess.Popen[bytes] | None = None
    _dir: tempfile.TemporaryDirectory[str] | None = None
    _last_log: str = ""

    @property
    def log_path(self) -> Path:
        assert self._dir is not None
        return Path(self._dir.name, f"{self.name}.log")

    def start(self) -> CeleryProcess:
        self._dir = tempfile.TemporaryDirectory(prefix="mf_celery_")
        module = settings_module({"LOGGING": INFO_LOGGING, **self.settings}, self._dir.name)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(BIN / "celery"), "-A", "testproject.celery_app", *self.args],
                env=subprocess_env(self.env, module, self._dir.name),
                cwd=self._dir.name if "beat" in self.args else ROOT,  # beat writes its schedule file here
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_for(self, text: str, timeout: float = 30, count: int = 1) -> None:
        def seen() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.log()}")
            return self.log().count(text) >= count

        try:
            wait_until(seen, timeout, interval=0.05, what=f"{self.name} logs {text!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {self.name} log:\n{self.log()}") from None

    def log(self) -> str:
        if self._dir is None:
            return self._last_log
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        """Warm shutdown (SIGTERM: running tasks finish), then SIGKILL if it hangs."""
        process, self.process = self.process, None
        stop_group(process, timeout)
        if self._dir is not None:
            self._last_log = self.log()
            self._dir.cleanup()
            self._dir = None


def worker(
    env: Mapping[str, str], broker: Broker, queues: list[str], settings: Mapping[str, Any] | None = None, url: str = ""
) -> CeleryProcess:
    """A prefork worker with two processes and Celery's default prefetch (4 per process), on the
    broker (or at ``url``: the same broker through a proxy)."""
    args = [
        "worker",
        f"--queues={','.join(queues)}",
        "--concurrency=2",
        "--pool=prefork",
        f"--hostname=mf-{broker.tag}-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
    ]
    full_env = {**env, "MF_CELERY_BROKER": url or broker.url, "MF_CELERY_QUEUE": queues[0], "MF_REDIS_URL": REDIS_URL}
    return CeleryProcess(full_env, args, dict(settings or {}))


def beat(
    env: Mapping[str, str],
    broker: Broker,
    scheduler: str = "maintenance_flags.contrib.celery.MaintenanceScheduler",
    settings: Mapping[str, Any] | None = None,
) -> CeleryProcess:
    """``celery beat -S scheduler`` on the broker, looking at its schedule at least every 0.2 s
    (``beat_max_loop_interval``: the command line's ``--max-interval`` takes whole seconds only).

    Its working directory is its own temporary directory, so Celery's PersistentScheduler keeps
    its schedule file there (``-s``) and starts from an empty one. Ready at "beat: Starting...".
    """
    args = ["beat", "-S", scheduler, "--loglevel=INFO", "-s", "celerybeat-schedule"]
    full_env = {
        **env,
        "MF_CELERY_BROKER": broker.url,
        "MF_CELERY_QUEUE": broker.queue("default"),
        "MF_REDIS_URL": REDIS_URL,
    }
    return CeleryProcess(full_env, args, {"CELERY_BEAT_MAX_LOOP_INTERVAL": 0.2, **(settings or {})}, name="beat")


def manage_with(
    settings: Mapping[str, Any], env: Mapping[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``django-admin ARGS`` with the demo's settings plus ``settings``, as a CeleryProcess would have
    them (e.g. django_celery_beat installed, to migrate it); raises on failure.

    Not ``testproject/manage.py``: that puts testproject/ first on the path, where its celery.py
    hides the celery package from django_celery_beat."""
    with tempfile.TemporaryDirectory(prefix="mf_manage_") as directory:
        module = settings_module(settings, directory)
        result = subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=subprocess_env(env, module, directory),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        raise AssertionError(
            f"django-admin {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


@contextlib.contextmanager
def started(process: CeleryProcess, ready: str = "ready.") -> Iterator[CeleryProcess]:
    try:
        process.start()
        process.wait_for(ready)
        yield process
    finally:
        process.stop()


def now() -> float:
    return time.time()
