"""The demo's Celery app, guarded by maintenance_flags: ``celery -A testproject.celery_app worker``.

Not ``celery.py``: ``python testproject/manage.py`` puts this folder first on the import path, where
a ``celery.py`` would hide the celery package. The broker is ``MF_CELERY_BROKER`` (Redis on
127.0.0.1 by default; the tests also use RabbitMQ).
"""

from __future__ import annotations

import os

from celery import Celery

from maintenance_flags.contrib.celery import install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

app = Celery("testproject", include=["testproject.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
# The load harness (bench/background.py) runs an unguarded worker beside a guarded one to measure
# what the guard costs per task: MF_CELERY_UNGUARDED=1 leaves install() out. Nothing else sets it.
if os.environ.get("MF_CELERY_UNGUARDED") != "1":
    install(app)
