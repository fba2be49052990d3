"""Template context: ``maintenance_mode`` is True while the request's site is in maintenance."""

from __future__ import annotations

from django.http import HttpRequest

from maintenance_flags.decisions import verdict_for


def maintenance(request: HttpRequest) -> dict[str, bool]:
    return {"maintenance_mode": verdict_for(request).in_maintenance}
