"""The status of sites: the lines ``setmaintenance status`` prints, and the document of ``--json``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from maintenance_flags.conf import conf
from maintenance_flags.names import ALL_SITES_SWITCH, REASON_GLOBAL
from maintenance_flags.snapshot import Detail, Snapshot
from maintenance_flags.state import state_for_site_id

if TYPE_CHECKING:
    from django.contrib.sites.models import Site


def status_lines(snapshot: Snapshot, sites: list[Site]) -> list[str]:
    """``<id> <domain> on|off (<reason>)`` per site, then ``all - on|off (global switch)``: machine-read."""
    lines = []
    for site in sites:
        state = state_for_site_id(snapshot, site.pk, site)
        lines.append(f"{site.pk} {site.domain} {'on' if state.active else 'off'} ({state.reason})")
    on = snapshot.switch_on(ALL_SITES_SWITCH, timezone.now()) is not None
    lines.append(f"all - {'on' if on else 'off'} ({REASON_GLOBAL})")
    return lines


def _sent_to(on: bool, redirect_url: str, refresh: int | None) -> dict[str, Any]:
    """Where a blocked browser is sent and after how long the page reloads, while in maintenance:
    the value set with ``on --redirect/--refresh`` (or the admin), else the setting; None when off."""
    return {
        "redirect": (redirect_url or conf.MAINTENANCE_REDIRECT_URL) if on else None,
        "refresh": (refresh or conf.MAINTENANCE_REFRESH) if on else None,
    }


def status_document(snapshot: Snapshot, sites: list[Site]) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    rows = []
    for site in sites:
        state = state_for_site_id(snapshot, site.pk, site)
        rows.append(
            {
                "id": site.pk,
                "domain": site.domain,
                "on": state.active,
                "reason": state.reason,
                "ends_at": iso(state.ends_at),
                "message": state.message,
                "readonly": state.readonly,
                **_sent_to(state.active, state.redirect_url, state.refresh),
            }
        )
    detail = snapshot.switch_on(ALL_SITES_SWITCH, timezone.now())
    shown = detail or Detail()
    return {
        "sites": rows,
        "all_sites": {
            "on": detail is not None,
            "ends_at": iso(shown.ends_at),
            "message": shown.message,
            **_sent_to(detail is not None, shown.redirect_url, shown.refresh),
        },
    }
