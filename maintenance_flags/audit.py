"""The audit trail: who changed what, from where — and the signals that go with it.

Every real change of a maintenance or read-only switch is recorded as a
:class:`~maintenance_flags.models.MaintenanceEvent`, whatever made it: our admin and
command (which say so with :func:`acting`), waffle's admin, ``waffle_switch`` or a shell
``save()`` (source ``"switch"``), and windows opening or closing (``"schedule"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from maintenance_flags.names import READONLY_PREFIX, is_our_switch, site_id_of
from maintenance_flags.signals import maintenance_ended, maintenance_started

PREVIOUS_ATTR = "_maintenance_flags_previous"
DELETED_SITE_ATTR = "_maintenance_flags_deleted_site"


@dataclass(frozen=True)
class Acting:
    source: str
    user: Any = None
    reason: str = ""


_acting: ContextVar[Acting | None] = ContextVar("maintenance_flags_acting", default=None)
# The request being served (set by the middleware), to name the user behind waffle's admin.
current_request: ContextVar[HttpRequest | None] = ContextVar("maintenance_flags_request", default=None)


@contextmanager
def acting(source: str, user: Any = None, reason: str = "") -> Iterator[None]:
    """Attribute the switch changes made inside this block to ``source``/``user``/``reason``."""
    token = _acting.set(Acting(source, user, reason))
    try:
        yield
    finally:
        _acting.reset(token)


def _actor() -> Acting:
    actor = _acting.get()
    if actor is not None:
        return actor
    request = current_request.get()
    user = getattr(request, "user", None) if request is not None else None
    return Acting("switch", user)


def _saved_user(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) and getattr(user, "pk", None) else None


def record(
    *,
    site_id: int | None,
    switch_name: str,
    active: bool,
    previous: bool | None,
    readonly: bool,
    source: str | None = None,
    reason: str = "",
    user: Any = None,
    deleted_site: Any = None,
) -> None:
    """Record a real change; signal it unless it is a read-only change (the signals are about maintenance)."""
    from django.contrib.sites.models import Site

    from maintenance_flags.models import MaintenanceEvent

    actor = _actor()
    source = source or actor.source
    user = _saved_user(user if source == "schedule" else actor.user)
    reason = reason or actor.reason
    site = Site.objects.filter(pk=site_id).first() if site_id is not None else None
    MaintenanceEvent.objects.create(
        site=site,
        switch_name=switch_name,
        active=active,
        previous=previous,
        readonly=readonly,
        source=source,
        user=user,
        reason=reason,
    )
    if readonly:
        return
    signal = maintenance_started if active else maintenance_ended
    signal.send(sender=MaintenanceEvent, site=site or deleted_site, source=source, user=user, reason=reason)


# --- receivers (connected in receivers.connect) ---------------------------------------------------


def remember_previous(sender: Any, instance: Any, raw: bool = False, using: str = "default", **kwargs: Any) -> None:
    if raw or not is_our_switch(instance.name):
        return
    previous = None
    if instance.pk is not None:
        previous = sender.objects.using(using).filter(pk=instance.pk).values_list("active", flat=True).first()
    setattr(instance, PREVIOUS_ATTR, previous)


def record_switch_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw or not is_our_switch(instance.name):
        return
    previous = getattr(instance, PREVIOUS_ATTR, None)
    if bool(previous) == bool(instance.active):
        return
    if not instance.active:
        from maintenance_flags.models import SwitchDetail

        SwitchDetail.objects.filter(switch_name=instance.name).delete()  # planned end and message go with it
    record(
        site_id=site_id_of(instance.name),
        switch_name=instance.name,
        active=bool(instance.active),
        previous=previous,
        readonly=instance.name.startswith(READONLY_PREFIX),
    )


def record_switch_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    if is_our_switch(instance.name) and instance.active:
        record(
            site_id=site_id_of(instance.name),
            switch_name=instance.name,
            active=False,
            previous=True,
            readonly=instance.name.startswith(READONLY_PREFIX),
            reason="" if _acting.get() else "switch deleted",
            deleted_site=getattr(instance, DELETED_SITE_ATTR, None),
        )


def record_window(window_id: int, opened: bool) -> None:
    from maintenance_flags.models import MaintenanceWindow

    window = MaintenanceWindow.objects.get(pk=window_id)
    record(
        site_id=window.site_id,
        switch_name="",
        active=opened,
        previous=not opened,
        readonly=False,
        source="schedule",
        reason=window.message or f"maintenance window #{window.pk}",
    )
