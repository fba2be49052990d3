"""Redirecting blocked browsers (``MAINTENANCE_REDIRECT_URL``, ``setmaintenance on --redirect``).

The target comes from the operator (a setting or a saved switch detail), never from the
request. A target on this site has its own path exempt, so the redirect never loops.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.request import split_domain_port

MAX_LENGTH = 2000


def is_valid(url: str) -> bool:
    """A path on this site (``/status/``) or an absolute ``http(s)://`` URL with a host."""
    if not isinstance(url, str) or not url or len(url) > MAX_LENGTH or url != url.strip():
        return False
    if any(ch.isspace() or ord(ch) < 32 for ch in url) or "\\" in url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme:
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    return url.startswith("/") and not url.startswith("//")  # "//host" would leave the site


def path_on_this_host(url: str, request: HttpRequest) -> str | None:
    """The target's path if it is on the request's host (a bare path always is), else None."""
    parts = urlsplit(url)
    if parts.netloc:
        try:
            host = request.get_host()
        except DisallowedHost:  # no redirect target can be this host
            return None
        if split_domain_port(parts.netloc)[0] != split_domain_port(host)[0]:
            return None
    return unquote(parts.path) or "/"
