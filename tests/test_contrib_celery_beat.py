"""Celery beat during maintenance: a periodic task that falls due is not sent, unless it is allowed.

The real processes: ``celery beat`` with Celery's own scheduler (``MaintenanceScheduler``) and
with django-celery-beat's ``DatabaseScheduler`` through the mixin (``testproject.beat.Scheduler``),
each with two tasks due every second on Redis, and no worker: what beat sends stays in the
broker, so the length of each task's queue is exactly the number of messages beat sent. Then
``MaintenanceSchedulerMixin.apply_entry`` in-process, against a stand-in scheduler.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from celery.beat import PersistentScheduler
from django.conf import settings as django_settings
from django.db import connection

from maintenance_flags import background
from maintenance_flags.contrib.celery import MaintenanceScheduler, MaintenanceSchedulerMixin
from maintenance_flags.names import readonly_switch_name
from maintenance_flags.switches import set_switch
from tests.celery_support import BROKERS, REDIS_URL, Broker, CeleryProcess, beat, manage_with, started
from tests.servers import db_env, wait_until
from tests.utils import turn

TTL = 1.0
#: the bound this test holds beat to: no message for a task that is not allowed after TTL + SEEN
SEEN = 1.5
#: how long the test watches beat while the site is down, once that bound has passed
WATCH = 3.0
# A loaded 2-core machine: polling, the database, starting processes.
MARGIN = 1.5

HELD_TASK = "testproject.record"
ALLOWED_TASK = "testproject.noop"


@dataclass(frozen=True)
class Periodic:
    """A periodic task of the test's schedule: its entry name, task and (unique) queue."""

    name: str
    task: str
    queue: str

    def queued(self) -> int:
        """Messages beat has sent so far: nothing consumes the queue."""
        client = redis.Redis.from_url(REDIS_URL)
        try:
            return int(client.llen(self.queue))
        finally:
            client.close()

    def sent(self, log: str) -> int:
        return log.count(f"Scheduler: Sending due task {self.name} ({self.task})")

    def skipped(self, log: str) -> int:
        return log.count(f"Celery beat: not sending {self.name} ({self.task})")


@dataclass
class Schedule:
    broker: Broker
    held: Periodic
    allowed: Periodic


@pytest.fixture
def schedule() -> Iterator[Schedule]:
    broker = Broker("redis", BROKERS["redis"])
    made = Schedule(
        broker,
        Periodic(broker.queue("held"), HELD_TASK, broker.queue("held")),
        Periodic(broker.queue("allowed"), ALLOWED_TASK, broker.queue("allowed")),
    )
    yield made
    broker.cleanup([made.held.queue, made.allowed.queue, broker.queue("default")])


def env() -> dict[str, str]:
    return {**db_env(connection.settings_dict), "MF_STATE_TTL": str(TTL)}


def both_grow(schedule: Schedule, by: int, timeout: float, what: str) -> None:
    """Wait until beat has sent ``by`` more of each task."""
    held, allowed = schedule.held.queued(), schedule.allowed.queued()
    wait_until(
        lambda: schedule.held.queued() >= held + by and schedule.allowed.queued() >= allowed + by, timeout, what=what
    )


def skip_and_resume(process: CeleryProcess, schedule: Schedule) -> None:
    """Both tasks are sent before maintenance; during it only the allowed one, with one INFO line
    per skipped run of the other; after it both again. Beat is stopped between two runs."""
    held, allowed = schedule.held, schedule.allowed
    both_grow(schedule, 2, 15, "beat sends both tasks before maintenance")

    turn(True)
    on_at = time.monotonic()
    time.sleep(max(0.0, on_at + TTL + SEEN - time.monotonic()))
    held_then, allowed_then = held.queued(), allowed.queued()
    time.sleep(WATCH)
    assert held.queued() == held_then, f"{held.task} sent more than TTL + {SEEN} s into maintenance"
    assert allowed.queued() >= allowed_then + 2, "the allowed task is still sent"
    log = process.log()
    assert held.skipped(log) >= 2
    assert f"Celery beat: not sending {held.name} ({held.task}): site 1 is in maintenance" in log
    assert allowed.skipped(log) == 0

    turn(False)
    wait_until(lambda: held.queued() > held_then, TTL + SEEN + MARGIN, what="sending resumes after maintenance")
    skips = held.skipped(process.log())
    both_grow(schedule, 1, 10, "beat sends both tasks after maintenance")
    assert held.skipped(process.log()) == skips, "a run skipped after maintenance ended"


def account(log: str, schedule: Schedule) -> None:
    """Every log line is one run: a message in the broker or one skipped run."""
    held, allowed = schedule.held, schedule.allowed
    assert held.sent(log) == held.queued()
    assert allowed.sent(log) == allowed.queued()
    # Both fall due every second, together: each run of the held one is either sent or skipped.
    assert abs(held.sent(log) + held.skipped(log) - allowed.sent(log)) <= 1, log


# Real processes (the in-process tests below are not marked: `make test-unit` runs them).
@pytest.mark.celery
@pytest.mark.servers
@pytest.mark.django_db(transaction=True)
def test_maintenance_scheduler_skips_and_resumes(schedule: Schedule) -> None:
    """Celery's PersistentScheduler (a schedule file) through ``MaintenanceScheduler``."""
    every_second = {
        schedule.held.name: {
            "task": HELD_TASK,
            "schedule": 1.0,
            "args": [schedule.broker.journal_key, "beat"],
            "options": {"queue": schedule.held.queue},
        },
        schedule.allowed.name: {"task": ALLOWED_TASK, "schedule": 1.0, "options": {"queue": schedule.allowed.queue}},
    }
    settings = {"CELERY_BEAT_SCHEDULE": every_second, "MAINTENANCE_CELERY_BEAT_ALLOWED": [ALLOWED_TASK]}
    process = beat(env(), schedule.broker, settings=settings)
    with started(process, ready="beat: Starting...") as running:
        skip_and_resume(running, schedule)
    account(process.log(), schedule)


# The two PeriodicTask rows, made by django-celery-beat's models in a process that has them.
MAKE_ROWS = """
import json
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask
call_command("migrate", "django_celery_beat", verbosity=0)
every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
for name, task, queue, args in json.loads(ROWS):
    PeriodicTask.objects.create(name=name, task=task, queue=queue, args=json.dumps(args), interval=every)
"""


@pytest.mark.celery
@pytest.mark.servers
@pytest.mark.django_db(transaction=True)
def test_django_celery_beat_database_scheduler_skips_and_resumes(schedule: Schedule) -> None:
    """django-celery-beat's DatabaseScheduler through the mixin. A skipped run still counts as a
    run for it: ``reserve`` (which adds one to ``total_run_count`` and moves ``last_run_at``)
    comes before ``apply_entry``."""
    settings = {
        "INSTALLED_APPS": [*django_settings.INSTALLED_APPS, "django_celery_beat"],
        "MAINTENANCE_CELERY_BEAT_ALLOWED": [ALLOWED_TASK],
    }
    rows = [
        [schedule.held.name, HELD_TASK, schedule.held.queue, [schedule.broker.journal_key, "beat"]],
        [schedule.allowed.name, ALLOWED_TASK, schedule.allowed.queue, []],
    ]
    manage_with(settings, env(), "shell", "-c", f"ROWS = {json.dumps(json.dumps(rows))}\n{MAKE_ROWS}")

    process = beat(env(), schedule.broker, "testproject.beat.Scheduler", settings)
    with started(process, ready="beat: Starting...") as running:
        skip_and_resume(running, schedule)
    log = process.log()
    account(log, schedule)
    # Beat writes the run counts back as it stops.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, total_run_count FROM django_celery_beat_periodictask WHERE name IN (%s, %s)",
            [schedule.held.name, schedule.allowed.name],
        )
        runs = dict(cursor.fetchall())
    assert runs == {
        schedule.held.name: schedule.held.sent(log) + schedule.held.skipped(log),
        schedule.allowed.name: schedule.allowed.sent(log),
    }


# --- MaintenanceSchedulerMixin.apply_entry in-process ------------------------------------------


@dataclass
class Entry:
    name: str
    task: str


@dataclass
class Base:
    """What the mixin calls of a beat scheduler: ``apply_entry`` sends."""

    sent: list[tuple[str, object]] = field(default_factory=list)

    def apply_entry(self, entry: Entry, producer: object = None) -> None:
        self.sent.append((entry.name, producer))


class Guarded(MaintenanceSchedulerMixin, Base):
    pass


PRODUCER = object()
NIGHTLY = Entry("nightly", "app.nightly")
HEARTBEAT = Entry("heartbeat", "app.heartbeat")


@pytest.fixture
def scheduler(settings: Any) -> Guarded:
    settings.MAINTENANCE_CELERY_BEAT_ALLOWED = ["app.heartbeat"]
    return Guarded()


@pytest.mark.django_db
def test_up_every_entry_is_sent(scheduler: Guarded, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="maintenance_flags"):
        scheduler.apply_entry(NIGHTLY, producer=PRODUCER)
        scheduler.apply_entry(HEARTBEAT)
    assert scheduler.sent == [("nightly", PRODUCER), ("heartbeat", None)]
    assert caplog.records == []


@pytest.mark.django_db
def test_down_only_the_allowed_entries_are_sent(scheduler: Guarded, caplog: pytest.LogCaptureFixture) -> None:
    turn(True)
    with caplog.at_level(logging.INFO, logger="maintenance_flags"):
        scheduler.apply_entry(NIGHTLY, producer=PRODUCER)
        scheduler.apply_entry(HEARTBEAT, producer=PRODUCER)
        scheduler.apply_entry(NIGHTLY, producer=PRODUCER)
    assert scheduler.sent == [("heartbeat", PRODUCER)]
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "Celery beat: not sending nightly (app.nightly): site 1 is in maintenance")
    ] * 2


@pytest.mark.django_db
def test_the_global_switch_counts(scheduler: Guarded) -> None:
    turn(True, site_id=None)
    scheduler.apply_entry(NIGHTLY)
    assert scheduler.sent == []


@pytest.mark.django_db
def test_read_only_counts_as_down(scheduler: Guarded, caplog: pytest.LogCaptureFixture) -> None:
    set_switch(readonly_switch_name(1), True)
    with caplog.at_level(logging.INFO, logger="maintenance_flags"):
        scheduler.apply_entry(NIGHTLY)
        scheduler.apply_entry(HEARTBEAT)
    assert scheduler.sent == [("heartbeat", None)]
    assert caplog.messages == ["Celery beat: not sending nightly (app.nightly): site 1 is read-only"]


@pytest.mark.django_db
def test_sent_again_once_maintenance_ends(scheduler: Guarded) -> None:
    turn(True)
    scheduler.apply_entry(NIGHTLY)
    turn(False)  # a local write: this process sees it at once
    scheduler.apply_entry(NIGHTLY)
    assert scheduler.sent == [("nightly", None)]


@dataclass
class OneOff:
    one_off: bool = True


@dataclass
class ModelEntry(Entry):
    """django-celery-beat's entries carry their PeriodicTask as ``model``."""

    model: OneOff = field(default_factory=OneOff)


@pytest.mark.django_db
def test_a_one_off_task_is_sent_to_wait_for_the_workers(scheduler: Guarded) -> None:
    """It has no next run: skipping it would lose it. Guarded workers hold it until maintenance ends."""
    turn(True)
    scheduler.apply_entry(ModelEntry("once", "app.once"))
    scheduler.apply_entry(ModelEntry("every", "app.every", OneOff(one_off=False)))
    assert scheduler.sent == [("once", None)]


@pytest.mark.django_db
def test_a_state_that_cannot_be_read_does_not_stop_beat(
    scheduler: Guarded, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(background, "site_state", broken)
    scheduler.apply_entry(NIGHTLY)
    assert scheduler.sent == [("nightly", None)]
    assert "Could not read the maintenance state for Celery beat; sending nightly" in caplog.text


def test_maintenance_scheduler_is_celerys_persistent_scheduler() -> None:
    assert MaintenanceScheduler.__mro__[1:3] == (MaintenanceSchedulerMixin, PersistentScheduler)
