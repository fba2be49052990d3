"""Real Celery workers on real Redis and RabbitMQ: nothing runs during maintenance, nothing is lost.

A prefork worker (2 processes, Celery's default prefetch of 4 per process, early or late acks) runs
``testproject.record``, which writes each run down in Redis; the test turns maintenance on
and off in the database, as ``setmaintenance`` would, and counts the runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from django.db import connection

from tests.celery_support import BROKERS, Broker, Journal, now, started, worker
from tests.servers import TcpProxy, db_env, wait_until
from tests.utils import turn

pytestmark = [pytest.mark.celery, pytest.mark.servers, pytest.mark.django_db(transaction=True)]

TTL = 1.0
TICK = 0.5
# A loaded 2-core machine: polling the journal, starting processes.
MARGIN = 1.5


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    made = Broker(request.param, BROKERS[request.param])
    yield made
    made.cleanup([made.queue("main"), made.queue("exempt")])


def env() -> dict[str, str]:
    return {**db_env(connection.settings_dict), "MF_STATE_TTL": str(TTL)}


@pytest.mark.parametrize("acks", ["early", "late"])
def test_paused_held_restarted_and_run_exactly_once(broker: Broker, acks: str) -> None:
    """Early acks (Celery's default: a message is acknowledged as its task starts) and late acks
    (after it ends). On Redis the visibility timeout is 8 s, shorter than this maintenance: the
    guard gives held messages back at once, so none stays unacknowledged long enough to come back."""
    main, exempt = broker.queue("main"), broker.queue("exempt")
    journal = Journal(broker.journal_key)
    sender = broker.sender()

    def send(label: str, queue: str = main, seconds: float = 0.0) -> None:
        sender.send_task("testproject.record", args=[broker.journal_key, label, seconds], queue=queue)

    settings: dict[str, object] = {
        "MAINTENANCE_CELERY_EXEMPT_QUEUES": [exempt],
        "CELERY_TASK_ACKS_LATE": acks == "late",
    }
    if broker.kind == "redis":
        settings["CELERY_BROKER_TRANSPORT_OPTIONS"] = {"visibility_timeout": 8}
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(started(worker(env(), broker, [main, exempt], settings)))
        # Two long tasks take both processes; six more are prefetched behind them.
        send("long-1", seconds=4)
        send("long-2", seconds=4)
        for n in range(6):
            send(f"before-{n}")
        wait_until(lambda: {"long-1", "long-2"} <= set(journal.started()), 15, what="the long tasks start")

        turn(True)
        on_at = now()
        first.wait_for("Celery worker paused", timeout=TTL + TICK + MARGIN)
        for n in range(5):
            send(f"during-{n}")
        send("exempt-1", queue=exempt)
        wait_until(lambda: "exempt-1" in journal.finished(), 10, what="the exempt queue keeps running")
        # The running tasks finish; the prefetched ones and the ones sent now wait.
        wait_until(lambda: {"long-1", "long-2"} <= set(journal.finished()), 10, what="the running tasks finish")
        assert "paused: site 1 is in maintenance" in first.log()

        # A deploy: warm shutdown and a new worker while the site is still down.
        first.stop()
        second = stack.enter_context(started(worker(env(), broker, [main, exempt], settings)))
        second.wait_for("Celery worker paused")
        send("exempt-2", queue=exempt)
        wait_until(lambda: "exempt-2" in journal.finished(), 10, what="the exempt queue runs after the restart")
        held = [label for label, runs in journal.started().items() if label.startswith(("before", "during"))]
        late = [
            label for label, runs in journal.started().items() if any(t > on_at + TTL + TICK + MARGIN for t in runs)
        ]
        assert held == [], "tasks started during maintenance"
        assert set(late) <= {"exempt-1", "exempt-2"}

        turn(False)
        off_at = now()
        second.wait_for("Celery worker resumed", timeout=TTL + TICK + MARGIN)
        expected = {"long-1", "long-2", "exempt-1", "exempt-2", *(f"before-{n}" for n in range(6))}
        expected |= {f"during-{n}" for n in range(5)}
        wait_until(lambda: set(journal.finished()) == expected, 20, what="every task runs after maintenance")

    runs = journal.started()
    assert {label: len(times) for label, times in runs.items() if len(times) != 1} == {}, "a task ran twice"
    assert sorted(journal.finished()) == sorted(expected)
    held_starts = [min(times) for label, times in runs.items() if label.startswith(("before", "during"))]
    assert min(held_starts) >= off_at


def test_broker_down_when_pausing_and_when_resuming() -> None:
    """The worker loses the broker as maintenance starts and again as it ends: it reconnects,
    pauses (or resumes) then, and every task still runs exactly once, after maintenance."""
    broker = Broker("redis", BROKERS["redis"])
    main = broker.queue("main")
    journal = Journal(broker.journal_key)
    sender = broker.sender()  # straight to Redis: the tasks are sent while the worker's link is cut
    proxy = TcpProxy(6379).open()
    try:
        with started(worker(env(), broker, [main], url=f"redis://127.0.0.1:{proxy.port}/0")) as process:
            sender.send_task("testproject.record", args=[broker.journal_key, "before"], queue=main)
            wait_until(lambda: "before" in journal.finished(), 10, what="a task runs before maintenance")

            # The link breaks as maintenance starts: the consumer reconnects (Celery retries after
            # 2 s), and the guard pauses the queues before it consumes again.
            proxy.close()
            turn(True)
            for n in range(4):
                sender.send_task("testproject.record", args=[broker.journal_key, f"during-{n}"], queue=main)
            time.sleep(1)
            proxy.open()
            process.wait_for("Celery worker paused", timeout=15)
            time.sleep(TTL + TICK)
            assert not [label for label in journal.started() if label.startswith("during")]

            # And again as it ends: the worker resumes once it is back.
            proxy.close()
            turn(False)
            time.sleep(1)
            proxy.open()
            process.wait_for("Celery worker resumed", timeout=15)
            expected = {"before", *(f"during-{n}" for n in range(4))}
            wait_until(lambda: set(journal.finished()) == expected, 20, what="every task runs after maintenance")
            time.sleep(TICK)
        assert {label: len(times) for label, times in journal.started().items() if len(times) != 1} == {}
    finally:
        proxy.close()
        broker.cleanup([main])
