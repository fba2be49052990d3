"""What an operator sets on a maintenance switch besides its message and end: where blocked
browsers are sent (``on --redirect``) and how often the page reloads (``on --refresh``).

Checked the same way for ``setmaintenance`` and the admin's "Site maintenance" page. Both raise
ValueError with a translated sentence (no final stop), as :mod:`maintenance_flags.times` does.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from maintenance_flags import redirects
from maintenance_flags.conf import MAX_REFRESH


def redirect_target(raw: str) -> str:
    """A redirect target (a path starting with ``/`` or an absolute http(s) URL), or ``""``: none."""
    value = raw.strip()
    if value and not redirects.is_valid(value):
        raise ValueError(_("%(value)r is not a path starting with / or an absolute http(s) URL") % {"value": raw})
    return value


def refresh_seconds(raw: str) -> int:
    """Seconds from 1 to :data:`~maintenance_flags.conf.MAX_REFRESH`, or ``0`` (``""`` too): none."""
    value = raw.strip()
    if not value:
        return 0
    seconds = int(value) if value.isascii() and value.isdigit() else -1
    if not 0 <= seconds <= MAX_REFRESH:
        raise ValueError(
            _("%(value)r is not a whole number of seconds from 1 to %(max)d") % {"value": raw, "max": MAX_REFRESH}
        )
    return seconds
