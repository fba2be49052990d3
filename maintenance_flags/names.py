"""Names of the waffle switches that hold the state, and the reasons a site is down."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils.translation import gettext_noop

if TYPE_CHECKING:
    from waffle.models import AbstractBaseSwitch

SWITCH_PREFIX = "maintenance_mode_"
SITE_SWITCH_PREFIX = "maintenance_mode_site_"
ALL_SITES_SWITCH = "maintenance_mode_all_sites"
READONLY_PREFIX = "maintenance_readonly_"
READONLY_SITE_PREFIX = "maintenance_readonly_site_"
READONLY_ALL_SITES_SWITCH = "maintenance_readonly_all_sites"
#: Every switch of ours starts with one of these: maintenance and read-only, per site and for all.
OUR_PREFIXES = (SWITCH_PREFIX, READONLY_PREFIX)

# Plain strings (machine-readable in `setmaintenance status`), marked for translation in the admin.
REASON_SITE = gettext_noop("site switch")
REASON_GLOBAL = gettext_noop("global switch")
REASON_WINDOW = gettext_noop("window")
REASON_READONLY = gettext_noop("read-only")
REASON_OFF = gettext_noop("off")
REASON_UNKNOWN = gettext_noop("state unavailable")


def site_switch_name(site_id: int) -> str:
    return f"{SITE_SWITCH_PREFIX}{site_id}"


def readonly_switch_name(site_id: int | None) -> str:
    return READONLY_ALL_SITES_SWITCH if site_id is None else f"{READONLY_SITE_PREFIX}{site_id}"


def is_our_switch(name: str) -> bool:
    return name.startswith(OUR_PREFIXES)


def our_switches() -> Q:
    """A filter for our switches, by name."""
    return Q(name__startswith=SWITCH_PREFIX) | Q(name__startswith=READONLY_PREFIX)


def site_id_of(name: str) -> int | None:
    """The Site id a switch name is for (None for the all-sites switches)."""
    for prefix in (SITE_SWITCH_PREFIX, READONLY_SITE_PREFIX):
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            return int(name[len(prefix) :])
    return None


def switch_model() -> type[AbstractBaseSwitch]:
    from waffle import get_waffle_switch_model

    return get_waffle_switch_model()
