"""Signal receivers: keep one switch per Site, and forget the memo after local writes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.apps import AppConfig
from django.contrib.sites.models import Site
from django.db import DatabaseError, router, transaction
from django.db.models.signals import post_delete, post_migrate, post_save, pre_save

from maintenance_flags import audit
from maintenance_flags.models import BypassToken, IgnoredURL, MaintenanceWindow, SwitchDetail
from maintenance_flags.names import readonly_switch_name, site_switch_name, switch_model
from maintenance_flags.schema import database_answers, missing_tables
from maintenance_flags.store import store
from maintenance_flags.switches import ensure_switches

logger = logging.getLogger("maintenance_flags")


def forget_state(**kwargs: Any) -> None:
    """Local writes are seen at once here; once committed, they replace the fleet's shared copy
    (``MAINTENANCE_STATE_CACHE``); other processes see them within the TTL."""
    store.invalidate()
    using = kwargs.get("using")
    transaction.on_commit(functools.partial(store.committed, store.publishes(using), using), using=using)


def create_switches_after_migrate(using: str = "default", **kwargs: Any) -> None:
    model = switch_model()
    if not router.allow_migrate_model(using, model):
        return
    _ensure_switches(lambda: list(Site.objects.using(using).values_list("pk", flat=True)), using)


def create_site_switch(instance: Site, created: bool, raw: bool = False, using: str = "default", **kwargs: Any) -> None:
    """Every save of a Site makes sure its switch exists (fixtures, with ``raw``, are left alone)."""
    if not raw:
        _ensure_switches(lambda: [instance.pk], using)


def _ensure_switches(site_ids: Callable[[], list[int]], using: str) -> None:
    """Create the missing switches; when waffle's or the sites' tables are not there yet (``migrate
    sites`` alone, migrating backwards), say so in one line: the next ``migrate`` creates them."""
    try:
        with transaction.atomic(using=using):  # a failure must not break the caller's transaction
            ensure_switches(site_ids(), using=using)
    except DatabaseError:
        needed = {switch_model()._meta.db_table, Site._meta.db_table}
        if database_answers(using) and needed & set(missing_tables()):
            logger.warning(
                "maintenance_flags: the maintenance switches will be created when `manage.py migrate` "
                "has created the tables of waffle and django.contrib.sites"
            )
        else:
            logger.warning("Could not create the maintenance switches", exc_info=True)


def delete_site_switch(instance: Site, using: str = "default", **kwargs: Any) -> None:
    names = [site_switch_name(instance.pk), readonly_switch_name(instance.pk)]
    for switch in switch_model().objects.using(using).filter(name__in=names):
        setattr(switch, audit.DELETED_SITE_ATTR, instance)  # for the signal: the Site, not "every site"
        with audit.acting("switch", reason="site deleted"):
            switch.delete()  # one object at a time, so waffle flushes its cache


def connect(config: AppConfig) -> None:
    post_migrate.connect(create_switches_after_migrate, sender=config, dispatch_uid="maintenance_flags.migrate")
    post_save.connect(create_site_switch, sender=Site, dispatch_uid="maintenance_flags.site_created")
    post_delete.connect(delete_site_switch, sender=Site, dispatch_uid="maintenance_flags.site_deleted")
    switch = switch_model()
    pre_save.connect(audit.remember_previous, sender=switch, dispatch_uid="maintenance_flags.audit.pre")
    post_save.connect(audit.record_switch_saved, sender=switch, dispatch_uid="maintenance_flags.audit.saved")
    post_delete.connect(audit.record_switch_deleted, sender=switch, dispatch_uid="maintenance_flags.audit.deleted")
    for model in (switch, Site, IgnoredURL, MaintenanceWindow, SwitchDetail, BypassToken):
        for signal in (post_save, post_delete):
            signal.connect(
                forget_state, sender=model, dispatch_uid=f"maintenance_flags.forget.{model.__name__}.{signal}"
            )
