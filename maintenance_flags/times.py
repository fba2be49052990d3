"""Parsing durations (``30m``) and times (ISO-8601; naive ones in ``settings.TIME_ZONE``).

Every time returned can be stored: it falls in the years 1 to 9999 in UTC too (databases keep UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_YEAR_PAST_9999 = re.compile(r"^\s*\+?\d{5,}-")


def parse_duration(value: str) -> timedelta:
    """``Ns``, ``Nm``, ``Nh`` or ``Nd``; raises ValueError otherwise."""
    match = _DURATION.match(value)
    if not match or int(match.group(1)) == 0:
        raise ValueError(_("%(value)r is not a duration like 90s, 30m, 2h or 1d") % {"value": value})
    try:
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise ValueError(_too_long(value)) from None


def end_after(value: str, now: datetime) -> datetime:
    """``now`` plus the duration ``value``; raises ValueError if that is no duration or past the year 9999."""
    delta = parse_duration(value)
    try:
        return _storable(now + delta)
    except OverflowError:
        raise ValueError(_too_long(value)) from None


def parse_when(value: str) -> datetime:
    """An ISO-8601 date-time; a naive one is in the current time zone (``settings.TIME_ZONE``).

    Raises ValueError for anything else, and for a time outside the years 1 to 9999 in UTC.
    """
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        if _YEAR_PAST_9999.match(value):
            raise ValueError(_out_of_range(value))
        raise ValueError(_("%(value)r is not an ISO-8601 date and time like 2026-12-01T02:00Z") % {"value": value})
    try:
        return _storable(parsed)
    except OverflowError:
        raise ValueError(_out_of_range(value)) from None


def _storable(when: datetime) -> datetime:
    """``when`` as the database gets it (aware with USE_TZ, naive local time without); OverflowError
    when it, or its UTC time, is outside the years 1 to 9999."""
    if settings.USE_TZ and timezone.is_naive(when):
        when = timezone.make_aware(when)
    elif not settings.USE_TZ and timezone.is_aware(when):
        when = timezone.make_naive(when)  # naive datetimes are local time without time zones
    if timezone.is_aware(when):
        when.astimezone(UTC)
    return when


def _too_long(value: str) -> str:
    return _("%(value)r is too long: the end would be after the year 9999") % {"value": value}


def _out_of_range(value: str) -> str:
    return _("%(value)r is outside the years 1 to 9999 (in UTC)") % {"value": value}
