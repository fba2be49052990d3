"""Celery: a guarded worker starts no task during maintenance, and a guarded beat sends none.

``install(app)`` adds :class:`WorkerGuard` to the app's consumer blueprint. The guard sits
between the task consumer and the pool, at the two points every task passes through: where the
consumer hands a request on (``on_task_request``) and, with the prefork pool, where the
worker's semaphore lets it start (``_process_task``). While the site is down, a request
reaching either point from a queue that is not exempt is rejected *with requeue*: it was never
acknowledged (Celery acknowledges when a task starts, or after it with ``acks_late``), so the
broker keeps it and delivers it again after maintenance. Meanwhile the worker stops consuming
those queues, so the broker holds every task sent during maintenance. docs/background.md has
the reasoning for each case (acks, prefetch, visibility timeout, restarts).

Every :data:`TICK` seconds the guard looks at the memoised state (a database read at most once
per ``MAINTENANCE_STATE_TTL``) and pauses or resumes. Running tasks finish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery, bootsteps
from celery.beat import PersistentScheduler
from celery.worker.state import task_ready

from maintenance_flags import background
from maintenance_flags.conf import conf

logger = logging.getLogger("maintenance_flags")

#: seconds between two looks at the state: maintenance is seen within TTL + TICK
TICK = 0.5


def install(app: Celery) -> None:
    """Guard the workers of ``app`` (call it where the Celery app is made)."""
    app.steps["consumer"].add(WorkerGuard)


class WorkerGuard(bootsteps.StartStopStep):
    """Pause the consumer's queues (all but the exempt ones) while the site is down."""

    label = "maintenance_flags"
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.consumer = c
        self.down = False
        #: queues this guard stopped consuming (to resume), and whether the broker still has to hear it
        self.paused: list[str] = []
        self.pending = False
        self._timer: Any = None
        # Requests reach the pool through these two callables; strategies capture the first when
        # the Tasks step starts, after this.
        self._hand_on: Callable[[Any], Any] = c.on_task_request
        c.on_task_request = self.hand_on
        worker = c.controller
        self._start: Callable[[Any], Any] | None = getattr(worker, "_process_task", None)
        # Only the prefork semaphore calls _process_task through us, and it has _quick_release.
        self._release: Callable[[], Any] = getattr(worker, "_quick_release", _nothing)
        if self._start is not None:
            worker._process_task = self.begin

    # --- the request path: one attribute read while the site is up ------------------------------

    def hand_on(self, request: Any) -> Any:
        if self.down and self.holds(request):
            return self.send_back(request)
        return self._hand_on(request)

    def begin(self, request: Any) -> Any:
        """Called (through the prefork semaphore) when a process is free for the request."""
        if self.down and self.holds(request):
            self.send_back(request)
            self._release()  # the semaphore slot this request took: the next request may have it
            return None
        assert self._start is not None
        return self._start(request)

    def holds(self, request: Any) -> bool:
        return queue_of(self.consumer.app, request) not in conf.MAINTENANCE_CELERY_EXEMPT_QUEUES

    def send_back(self, request: Any) -> None:
        """Return the message to the broker unacknowledged: it runs once, after maintenance."""
        request.reject(requeue=True)
        task_ready(request)  # Celery's bookkeeping: no longer reserved by this worker

    # --- pause and resume ------------------------------------------------------------------------

    def start(self, c: Any) -> None:
        """The step starts (the worker, or the consumer after a lost connection): look now, then every TICK."""
        if self.down:  # a new connection consumes every selected queue again: pause them again
            self.paused = sorted(set(self.paused) | set(self.consumed_queues()))
            self.pending = True
        elif self.paused:  # resumed while the connection was down
            self.pending = True
        self.tick()
        self._timer = c.timer.call_repeatedly(TICK, self.tick)

    def stop(self, c: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def tick(self) -> None:
        try:
            state = background.site_state()
        except Exception:  # the store already logs database failures; anything else must not stop the worker
            logger.exception("Could not read the maintenance state for the Celery worker")
            return
        down = background.is_down(state)
        if down != self.down:
            self.down = down
            if down:
                self.paused = sorted(set(self.paused) | set(self.consumed_queues()))
                logger.info(
                    "Celery worker paused: %s; holding the queues %s%s",
                    background.describe(state),
                    ", ".join(self.paused) or "(none)",
                    _exempt_note(),
                )
            else:
                logger.info("Celery worker resumed: maintenance is over; consuming %s again", ", ".join(self.paused))
            self.pending = True
        if self.pending:
            self.pending = not self.tell_broker()

    def consumed_queues(self) -> list[str]:
        task_consumer = self.consumer.task_consumer
        names = [queue.name for queue in task_consumer.queues] if task_consumer is not None else []
        return [name for name in names if name not in conf.MAINTENANCE_CELERY_EXEMPT_QUEUES]

    def tell_broker(self) -> bool:
        """Stop or start consuming the paused queues; False (retried next tick) if the broker failed."""
        c = self.consumer
        try:
            for name in self.paused:
                if self.down:
                    c.cancel_task_queue(name)
                else:
                    c.add_task_queue(name)
        except Exception:  # broker down: the requests are held at the guard meanwhile
            logger.warning(
                "Could not %s the Celery queues; retrying", "pause" if self.down else "resume", exc_info=True
            )
            return False
        if not self.down:
            self.paused = []
        return True


def _nothing() -> None:
    """No semaphore to release."""


def queue_of(app: Celery, request: Any) -> str | None:
    """The queue a request came from, found by the exchange and routing key it was sent with."""
    info = request.delivery_info or {}
    exchange, routing_key = info.get("exchange"), info.get("routing_key")
    for queue in app.amqp.queues.values():
        if queue.routing_key == routing_key and (queue.exchange.name or "") == (exchange or ""):
            return str(queue.name)
    return str(routing_key) if routing_key is not None else None


def _exempt_note() -> str:
    exempt = sorted(conf.MAINTENANCE_CELERY_EXEMPT_QUEUES)
    return f" (still taking tasks from {', '.join(exempt)})" if exempt else ""


# --- beat --------------------------------------------------------------------------------------


class MaintenanceSchedulerMixin:
    """For any beat scheduler: a periodic task that falls due while the site is down is not sent.

    ``class Scheduler(MaintenanceSchedulerMixin, DatabaseScheduler): pass``. The run counts as
    done (the schedule moves on to the next one); task names in ``MAINTENANCE_CELERY_BEAT_ALLOWED``
    are sent as usual. A one-off task (django-celery-beat's ``one_off``) has no next run, so it is
    sent: it waits in the broker, and guarded workers run it after maintenance.
    """

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        if entry.task not in conf.MAINTENANCE_CELERY_BEAT_ALLOWED and not _one_off(entry):
            try:
                state = background.site_state()
            except Exception:  # beat's loop would stop: send as without the guard (the workers still hold)
                logger.exception("Could not read the maintenance state for Celery beat; sending %s", entry.name)
            else:
                if background.is_down(state):
                    logger.info(
                        "Celery beat: not sending %s (%s): %s", entry.name, entry.task, background.describe(state)
                    )
                    return
        super().apply_entry(entry, producer=producer)  # type: ignore[misc]


def _one_off(entry: Any) -> bool:
    return getattr(getattr(entry, "model", None), "one_off", False) is True


class MaintenanceScheduler(MaintenanceSchedulerMixin, PersistentScheduler):
    """Celery's default scheduler (``celery beat -S maintenance_flags.contrib.celery.MaintenanceScheduler``)."""


__all__ = ("MaintenanceScheduler", "MaintenanceSchedulerMixin", "install")
