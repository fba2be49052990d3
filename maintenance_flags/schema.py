"""Is the database ready for this app? Whether it answers, and which tables ``migrate`` has yet
to create: what turns a missing table into advice ("run ``manage.py migrate``") instead of an
outage or a traceback.
"""

from __future__ import annotations

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router
from django.db.models import Model
from django.utils.translation import gettext as _

from maintenance_flags.names import switch_model


def database_answers(using: str = DEFAULT_DB_ALIAS) -> bool:
    """The database can be queried (so a failed query means a missing table, not an outage)."""
    try:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


def database_problem(exc: DatabaseError) -> str:
    """What to say about a database error: tables that do not exist yet mean `migrate` was not run."""
    try:
        missing = missing_tables()
    except DatabaseError:  # the database cannot be reached: its own message says more
        missing = []
    if missing:
        text = _("The database has no table %(tables)s yet: run `manage.py migrate`.")
        return text % {"tables": ", ".join(missing)}
    return _("Database error: %(error)s") % {"error": exc}


def missing_tables() -> list[str]:
    """The tables of the Site, the waffle switch and this app's models that do not exist."""
    from django.contrib.sites.models import Site

    existing: dict[str, list[str]] = {}
    missing = []
    models: list[type[Model]] = [Site, switch_model(), *apps.get_app_config("maintenance_flags").get_models()]
    for model in models:
        alias = router.db_for_write(model)
        if alias not in existing:
            existing[alias] = connections[alias].introspection.table_names()
        if model._meta.db_table not in existing[alias]:
            missing.append(model._meta.db_table)
    return list(dict.fromkeys(missing))  # proxy models share their table
