"""The Celery worker guard in-process, against a stand-in consumer: every branch, no broker.

tests/test_contrib_celery_workers.py shows the same with real workers on real brokers.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from celery import Celery
from kombu import Exchange, Queue

from maintenance_flags import background
from maintenance_flags.contrib import celery as guard_module
from maintenance_flags.contrib.celery import WorkerGuard, install, queue_of
from maintenance_flags.store import store
from tests.utils import run, turn

pytestmark = pytest.mark.django_db


@dataclass
class Request:
    id: str
    delivery_info: dict[str, str] | None
    rejected: list[bool] = field(default_factory=list)

    def reject(self, requeue: bool = False) -> None:
        self.rejected.append(requeue)

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass
class Entry:
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Timer:
    entries: list[tuple[float, Any]] = field(default_factory=list)

    def call_repeatedly(self, seconds: float, fun: Any) -> Entry:
        self.entries.append((seconds, fun))
        return Entry()


@dataclass
class TaskConsumer:
    queues: list[Queue]


class Worker:
    def __init__(self) -> None:
        self.started: list[Request] = []
        self.released = 0

    def _process_task(self, request: Request) -> None:
        self.started.append(request)

    def _quick_release(self) -> None:
        self.released += 1


class Consumer:
    """What WorkerGuard uses of celery.worker.consumer.Consumer."""

    def __init__(self, *queues: str, worker: Any = None) -> None:
        self.app = Celery("guard-test", set_as_current=False)
        self.app.conf.task_queues = [Queue(name, Exchange(name), routing_key=name) for name in queues]
        self.task_consumer: TaskConsumer | None = TaskConsumer(list(self.app.conf.task_queues))
        self.handed: list[Request] = []
        self.on_task_request = self.handed.append
        self.controller = Worker() if worker is None else worker
        self.timer = Timer()
        self.calls: list[tuple[str, str]] = []
        self.broker_down = False

    def cancel_task_queue(self, name: str) -> None:
        self._broker("cancel", name)

    def add_task_queue(self, name: str) -> None:
        self._broker("add", name)

    def _broker(self, what: str, name: str) -> None:
        if self.broker_down:
            raise ConnectionError("broker down")
        self.calls.append((what, name))


def request(queue: str, n: int = 1) -> Request:
    return Request(f"{queue}-{n}", {"exchange": queue, "routing_key": queue})


def look(guard: WorkerGuard) -> None:
    """The next tick, with the memo forgotten (the TTL has passed)."""
    store.invalidate()
    guard.tick()


@pytest.fixture
def consumer(settings: Any) -> Consumer:
    settings.MAINTENANCE_CELERY_EXEMPT_QUEUES = ["mail"]
    return Consumer("main", "mail")


def test_install_adds_the_step() -> None:
    app = Celery("install-test", set_as_current=False)
    install(app)
    assert WorkerGuard in app.steps["consumer"]


def test_up_every_request_goes_on(consumer: Consumer) -> None:
    guard = WorkerGuard(consumer)
    guard.start(consumer)
    consumer.on_task_request(request("main"))
    consumer.controller._process_task(request("main", 2))
    assert [r.id for r in consumer.handed] == ["main-1"]
    assert [r.id for r in consumer.controller.started] == ["main-2"]
    assert consumer.calls == []
    assert consumer.timer.entries == [(guard_module.TICK, guard.tick)]


def test_down_holds_all_but_the_exempt_queues_and_resumes(consumer: Consumer, caplog: pytest.LogCaptureFixture) -> None:
    guard = WorkerGuard(consumer)
    guard.start(consumer)
    turn(True)
    with caplog.at_level(logging.INFO, logger="maintenance_flags"):
        look(guard)
    assert consumer.calls == [("cancel", "main")]
    assert "Celery worker paused: site 1 is in maintenance; holding the queues main (still taking tasks from mail)" in (
        caplog.text
    )

    held, exempt, prefetched = request("main"), request("mail"), request("main", 2)
    consumer.on_task_request(held)
    consumer.on_task_request(exempt)
    consumer.controller._process_task(prefetched)  # its turn came, through the semaphore
    assert held.rejected == [True] and prefetched.rejected == [True]
    assert consumer.handed == [exempt]
    assert consumer.controller.started == []
    assert consumer.controller.released == 1

    look(guard)  # still down: nothing more to tell the broker
    assert consumer.calls == [("cancel", "main")]

    turn(False)
    with caplog.at_level(logging.INFO, logger="maintenance_flags"):
        look(guard)
    assert consumer.calls == [("cancel", "main"), ("add", "main")]
    assert "Celery worker resumed: maintenance is over; consuming main again" in caplog.text
    later = request("main", 3)
    consumer.on_task_request(later)
    assert consumer.handed == [exempt, later]


def test_read_only_holds_too(consumer: Consumer) -> None:
    guard = WorkerGuard(consumer)
    guard.start(consumer)
    run("readonly", "on")
    look(guard)
    assert consumer.calls == [("cancel", "main")]


def test_broker_down_while_pausing_is_retried(consumer: Consumer, caplog: pytest.LogCaptureFixture) -> None:
    guard = WorkerGuard(consumer)
    guard.start(consumer)
    turn(True)
    consumer.broker_down = True
    look(guard)
    assert "Could not pause the Celery queues; retrying" in caplog.text
    consumer.on_task_request(held := request("main"))  # held meanwhile
    assert held.rejected == [True]
    consumer.broker_down = False
    guard.tick()
    assert consumer.calls == [("cancel", "main")]


def test_restart_while_down_pauses_the_new_connection(consumer: Consumer) -> None:
    guard = WorkerGuard(consumer)
    guard.start(consumer)
    turn(True)
    look(guard)
    guard.stop(consumer)
    assert consumer.timer.entries
    consumer.calls.clear()
    guard.start(consumer)  # the consumer restarts after a lost connection
    assert consumer.calls == [("cancel", "main")]
    guard.stop(consumer)
    guard.stop(consumer)  # twice: nothing to cancel


def test_resume_interrupted_by_a_restart_is_finished(consumer: Consumer) -> None:
    guard = WorkerGuard(consumer)
    guard.start(consumer)
    turn(True)
    look(guard)
    turn(False)
    consumer.broker_down = True
    look(guard)
    consumer.broker_down = False
    consumer.calls.clear()
    store.invalidate()
    guard.start(consumer)
    assert consumer.calls == [("add", "main")]


def test_a_state_that_cannot_be_read_changes_nothing(
    consumer: Consumer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    guard = WorkerGuard(consumer)

    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(background, "site_state", broken)
    guard.tick()
    assert not guard.down
    assert "Could not read the maintenance state for the Celery worker" in caplog.text


def test_no_task_consumer_and_no_semaphore(settings: Any) -> None:
    consumer = Consumer("main", worker=object())
    consumer.task_consumer = None
    guard = WorkerGuard(consumer)
    assert guard.consumed_queues() == []
    turn(True)
    look(guard)
    assert guard.down and consumer.calls == []


def test_queue_of() -> None:
    consumer = Consumer("main")
    consumer.app.conf.task_queues = [Queue("renamed", Exchange("ex"), routing_key="rk")]
    assert queue_of(consumer.app, Request("1", {"exchange": "ex", "routing_key": "rk"})) == "renamed"
    assert queue_of(consumer.app, Request("2", {"exchange": "", "routing_key": "direct"})) == "direct"
    assert queue_of(consumer.app, Request("3", None)) is None


def test_importable_before_django_settings() -> None:
    """A project's celery.py imports install() before it sets DJANGO_SETTINGS_MODULE."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "import maintenance_flags.contrib.celery as c; print(c.install.__name__)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "install"), result.stderr
