"""Bypass links and headers: signed, expiring, revocable tokens, each for one site or every site.

A token is ``django.core.signing`` data naming a :class:`~maintenance_flags.models.BypassToken`
row, its secret, its site (None: every site) and its expiry. Checking one needs no query: the
signature proves it was issued here, and the snapshot holds the secret and site of every token
not revoked and not expired (so a revocation is seen everywhere within ``MAINTENANCE_STATE_TTL``).
The row's random secret keeps a link from opening a later row that reuses its id.
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

from maintenance_flags.conf import conf
from maintenance_flags.snapshot import Snapshot

PARAM = "maintenance_bypass"
COOKIE = "maintenance_bypass"
HEADER = "HTTP_X_MAINTENANCE_BYPASS"
SALT = "maintenance_flags.bypass"
DEFAULT_MINUTES = 60
MAX_MINUTES = 60 * 24 * 30  # 30 days


def issue(minutes: int = DEFAULT_MINUTES, label: str = "", *, site_id: int | None) -> tuple[Any, str]:
    """Create a token row for the site ``site_id`` (None: every site); return it with its signed value."""
    from maintenance_flags.models import BypassToken

    expires_at = timezone.now() + timedelta(minutes=minutes)
    row = BypassToken.objects.create(label=label, site_id=site_id, expires_at=expires_at)
    data = {"i": row.pk, "k": row.secret, "s": site_id, "e": int(expires_at.timestamp())}
    return row, signing.dumps(data, salt=SALT, compress=False)


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


def _expiry(token: str, snapshot: Snapshot, site_id: int | None) -> int | None:
    """The token's expiry (a Unix time) if it is genuine, live, not revoked and opens the site
    ``site_id`` (None: a request for no known site, which only every-site tokens open); else None."""
    if not token or len(token) > 512:
        return None
    try:
        data = signing.loads(token, salt=SALT)
        token_id, expires, issued = int(data["i"]), int(data["e"]), (data["k"], data["s"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None  # not ours, or a 1.0 token (no secret, no site)
    if expires <= time.time() or snapshot.bypass_tokens.get(token_id) != issued:
        return None  # expired, revoked, or signed for another row that had this id
    token_site = issued[1]
    if token_site is not None and token_site != site_id:
        return None  # issued for another site
    return expires


def request_has_bypass(request: HttpRequest, snapshot: Snapshot, site_id: int | None) -> bool:
    """The request carries (header or cookie) a live token that opens the site ``site_id``."""
    if not snapshot.bypass_tokens:
        return False
    token = request.META.get(HEADER) or request.COOKIES.get(COOKIE) or ""
    return _expiry(str(token), snapshot, site_id) is not None


def link_response(request: HttpRequest, snapshot: Snapshot) -> HttpResponse | None:
    """For ``?maintenance_bypass=<token>``: set the cookie and redirect to the same URL without it.

    The redirect is always a path on the same host (never elsewhere, whatever the other
    parameters say). A token that is invalid or does not open the request's site is ignored:
    the request carries on as usual.
    """
    if not snapshot.bypass_tokens or PARAM + "=" not in request.META.get("QUERY_STRING", ""):
        return None  # no live token (no link can be valid), or no link
    token = request.GET.get(PARAM, "")
    site = snapshot.site_for(request)  # as state_for_request finds it
    expires = _expiry(token, snapshot, site.pk if site is not None else conf.SITE_ID)
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
