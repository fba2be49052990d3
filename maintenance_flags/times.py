"""Parsing durations (``30m``) and times (ISO-8601; naive ones in ``settings.TIME_ZONE``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: str) -> timedelta:
    """``Ns``, ``Nm``, ``Nh`` or ``Nd``; raises ValueError otherwise."""
    match = _DURATION.match(value)
    if not match or int(match.group(1)) == 0:
        raise ValueError(_("%(value)r is not a duration like 90s, 30m, 2h or 1d") % {"value": value})
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_when(value: str) -> datetime:
    """An ISO-8601 date-time; a naive one is in the current time zone (``settings.TIME_ZONE``)."""
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(_("%(value)r is not an ISO-8601 date and time like 2026-12-01T02:00Z") % {"value": value})
    if settings.USE_TZ and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    elif not settings.USE_TZ and timezone.is_aware(parsed):
        parsed = timezone.make_naive(parsed)  # naive datetimes are local time without time zones
    return parsed
