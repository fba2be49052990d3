"""The demo's beat scheduler for django-celery-beat's database schedule, guarded by maintenance_flags.

``celery -A testproject.celery_app beat -S testproject.beat.Scheduler``, with ``django_celery_beat`` in
``INSTALLED_APPS`` (``pip install django-celery-beat``, then ``migrate``). Only beat imports this
module: importing it loads django-celery-beat's models. Celery's own scheduler needs no module:
``-S maintenance_flags.contrib.celery.MaintenanceScheduler``.
"""

from __future__ import annotations

from django_celery_beat.schedulers import DatabaseScheduler  # type: ignore[import-untyped]

from maintenance_flags.contrib.celery import MaintenanceSchedulerMixin


class Scheduler(MaintenanceSchedulerMixin, DatabaseScheduler):  # type: ignore[misc]
    """The PeriodicTask rows, as DatabaseScheduler runs them; one that falls due during maintenance
    is not sent unless its task is in ``MAINTENANCE_CELERY_BEAT_ALLOWED``."""
