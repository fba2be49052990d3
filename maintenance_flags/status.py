"""The status of sites as a document (``setmaintenance status --json``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from maintenance_flags.names import ALL_SITES_SWITCH
from maintenance_flags.snapshot import Snapshot
from maintenance_flags.state import state_for_site_id

if TYPE_CHECKING:
    from django.contrib.sites.models import Site


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
            }
        )
    detail = snapshot.switch_on(ALL_SITES_SWITCH, timezone.now())
    return {
        "sites": rows,
        "all_sites": {
            "on": detail is not None,
            "ends_at": iso(detail.ends_at if detail else None),
            "message": detail.message if detail else "",
        },
    }
