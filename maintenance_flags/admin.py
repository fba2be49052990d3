"""Admin registrations, only when their apps are installed (otherwise checks E002/E003 say so)."""

from __future__ import annotations

from django.apps import apps

if apps.is_installed("django.contrib.sites") and apps.is_installed(
    "waffle"
):  # pragma: no branch - tested in a subprocess (test_checks)
    from maintenance_flags import admin_pages, admin_site_page  # noqa: F401  (register the ModelAdmins)
