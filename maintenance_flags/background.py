"""Is this process's site down for background work (Celery workers and beat, commands, cron)?

Background work has no request, so its site is the one of ``SITE_ID``; and read-only counts as
maintenance, since a task or a command writes. The answer comes from the same memoised snapshot
as requests: a process reads the database at most once per ``MAINTENANCE_STATE_TTL``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import close_old_connections, connection

from maintenance_flags.conf import conf
from maintenance_flags.state import SiteState, state_for_site_id
from maintenance_flags.store import store

logger = logging.getLogger("maintenance_flags")

_Handle = TypeVar("_Handle", bound=Callable[..., Any])


def site_state() -> SiteState:
    """The state of ``SITE_ID``'s site now (the global switch and windows included)."""
    snapshot = store.fresh()
    if snapshot is None:
        snapshot = store.current()  # no visitor waits here: read now rather than at the next look
        if not connection.in_atomic_block:
            # No request ends in a worker or beat process to close an aged or broken connection.
            close_old_connections()
    return state_for_site_id(snapshot, conf.SITE_ID)


def is_down(state: SiteState) -> bool:
    """In maintenance or read-only: background work waits."""
    return state.active or state.readonly


def describe(state: SiteState) -> str:
    """For log lines: 'site 1 is in maintenance'."""
    what = "in maintenance" if state.active else "read-only"
    return f"site {state.site_id} is {what}" if state.site_id is not None else f"the site is {what}"


def skip_during_maintenance(handle: _Handle) -> _Handle:
    """Decorate a management command's ``handle``: during maintenance it does nothing and says so.

    The run is skipped, not failed (exit status 0), as Laravel's scheduler skips its commands:
    a cron job that runs it every few minutes simply runs again after maintenance.
    """

    @functools.wraps(handle)
    def guarded(self: Any, *args: Any, **options: Any) -> Any:
        state = site_state()
        if is_down(state):
            message = f"Skipped: {describe(state)}."
            logger.info("%s: %s", type(self).__module__.rsplit(".", 1)[-1], message)
            self.stdout.write(message)
            return None
        return handle(self, *args, **options)

    return guarded  # type: ignore[return-value]
