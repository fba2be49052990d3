from __future__ import annotations

from django.apps import AppConfig, apps
from django.utils.translation import gettext_lazy as _


class MaintenanceFlagsConfig(AppConfig):
    name = "maintenance_flags"
    verbose_name = _("Maintenance")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from maintenance_flags import checks  # noqa: F401  (registers the system checks)

        if apps.is_installed("waffle") and apps.is_installed("django.contrib.sites"):
            from maintenance_flags import receivers

            receivers.connect(self)
