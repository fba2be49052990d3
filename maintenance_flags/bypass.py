"""Bypass links and headers: signed, expiring, revocable tokens.

A token is ``django.core.signing`` data naming a :class:`~maintenance_flags.models.BypassToken`
row and its expiry. Checking one needs no query: the signature proves it was issued here,
and the snapshot holds the ids of the tokens not revoked and not expired (so a revocation
is seen everywhere within ``MAINTENANCE_STATE_TTL``).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.encoding import escape_uri_path
from django.utils.http import url_has_allowed_host_and_scheme

from maintenance_flags.state import Snapshot

PARAM = "maintenance_bypass"
COOKIE = "maintenance_bypass"
HEADER = "HTTP_X_MAINTENANCE_BYPASS"
SALT = "maintenance_flags.bypass"
DEFAULT_MINUTES = 60


def issue(minutes: int = DEFAULT_MINUTES, label: str = "") -> tuple[Any, str]:
    """Create a token row and return it with its signed value."""
    from maintenance_flags.models import BypassToken

    expires_at = timezone.now() + timedelta(minutes=minutes)
    row = BypassToken.objects.create(label=label, expires_at=expires_at)
    token = signing.dumps({"i": row.pk, "e": int(expires_at.timestamp())}, salt=SALT, compress=False)
    return row, token


def revoke(label: str | None = None) -> int:
    """Revoke every live token (or those with this label). Returns how many."""
    from maintenance_flags.models import BypassToken

    tokens = BypassToken.objects.all()
    return revoke_tokens(tokens if label is None else tokens.filter(label=label))


def revoke_tokens(tokens: QuerySet[Any]) -> int:
    """Revoke the live tokens among these, one save each (so every process's state forgets them)."""
    count = 0
    for row in tokens.filter(revoked=False):
        row.revoked = True
        row.save(update_fields=["revoked"])
        count += 1
    return count


def _expiry(token: str, snapshot: Snapshot) -> int | None:
    """The token's expiry (a Unix time) if it is genuine, live and not revoked; else None."""
    if not token or len(token) > 512:
        return None
    try:
        data = signing.loads(token, salt=SALT)
        token_id, expires = int(data["i"]), int(data["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    if expires <= time.time() or token_id not in snapshot.bypass_tokens:
        return None
    return expires


def request_has_bypass(request: HttpRequest, snapshot: Snapshot) -> bool:
    if not snapshot.bypass_tokens:
        return False
    token = request.META.get(HEADER) or request.COOKIES.get(COOKIE) or ""
    return _expiry(str(token), snapshot) is not None


def link_response(request: HttpRequest, snapshot: Snapshot) -> HttpResponse | None:
    """For ``?maintenance_bypass=<token>``: set the cookie and redirect to the same URL without it.

    The redirect is always a path on the same host (never elsewhere, whatever the other
    parameters say). An invalid token is ignored: the request carries on as usual.
    """
    if not snapshot.bypass_tokens or PARAM + "=" not in request.META.get("QUERY_STRING", ""):
        return None  # no live token (no link can be valid), or no link
    token = request.GET.get(PARAM, "")
    expires = _expiry(token, snapshot)
    if expires is None:
        return None
    query = request.GET.copy()
    query.pop(PARAM, None)
    location = "/" + escape_uri_path(request.path).lstrip("/")
    if query:
        location += "?" + query.urlencode()
    if not url_has_allowed_host_and_scheme(location, allowed_hosts=None):  # pragma: no cover - belt and braces
        location = "/"
    response = HttpResponseRedirect(location)
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(0, expires - int(time.time())),
        path="/",
        domain=settings.SESSION_COOKIE_DOMAIN,
        secure=bool(settings.SESSION_COOKIE_SECURE),
        httponly=True,
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )
    response["Cache-Control"] = "no-store"
    return response
