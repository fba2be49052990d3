"""Prepare the demo: superuser admin/admin and an ignored URL for /ignored-page/."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from maintenance_flags.models import IgnoredURL


class Command(BaseCommand):
    help = "Create the demo superuser (admin/admin) and the demo's ignored URL."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.com", "admin")
            self.stdout.write("Created superuser admin (password: admin).")
        _, created = IgnoredURL.objects.get_or_create(
            pattern="^ignored-page/$", site=None, defaults={"description": "demo: always reachable"}
        )
        if created:
            self.stdout.write("Added ignored URL ^ignored-page/$.")
        self.stdout.write("Demo ready: http://127.0.0.1:8000/ (admin at /admin/, admin / admin).")
