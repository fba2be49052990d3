"""Who is let through while a site is in maintenance: paths, client IPs, staff.

Everything here is pure and database-free except :func:`is_staff_user`, which
only looks at a user object the caller has already loaded.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Protocol

import re2

logger = logging.getLogger("maintenance_flags")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Matcher(Protocol):
    def match(self, text: str) -> object | None: ...


class PatternError(ValueError):
    """A pattern that cannot be used to match paths."""


class WholeSitePattern(PatternError):
    """A pattern that matches every path: as an exemption it would keep the whole site up."""


def normalise_pattern(pattern: str) -> str:
    """Treat a leading ``^/`` or ``/`` as ``^``: patterns match paths without their slash."""
    if pattern.startswith("^/"):
        return "^" + pattern[2:]
    if pattern.startswith("/"):
        return "^" + pattern[1:]
    return pattern


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Matcher:
    """Compile an ignored-URL pattern with RE2, a linear-time engine.

    RE2 guarantees that matching time grows linearly with the path, whatever the
    pattern, so an admin-supplied pattern such as ``^(a+)+$`` cannot hang a
    worker. Patterns RE2 cannot run (backreferences, lookarounds) are rejected.
    """
    options = re2.Options()
    options.log_errors = False
    try:
        compiled: Matcher = re2.compile(normalise_pattern(pattern), options)
    except re2.error as exc:
        raise PatternError(_describe(exc)) from exc
    except UnicodeEncodeError as exc:  # a lone surrogate: RE2 compiles UTF-8
        raise PatternError("the pattern is not valid Unicode text") from exc
    return compiled


#: Paths no sensible exemption matches all of: a pattern that matches each of them matches
#: (practically) every path, and would keep the whole site up during maintenance.
UNRELATED_PATHS = ("", "x", "maintenance-flags-probe/7e1/", "Z9/%/~.json")


def check_pattern(pattern: str) -> Matcher:
    """:func:`compile_pattern`, also refusing a pattern that matches every path (``^``, ``/``, ``.*``)."""
    compiled = compile_pattern(pattern)
    if all(compiled.match(path) is not None for path in UNRELATED_PATHS):
        raise WholeSitePattern("it matches every path, which would exempt the whole site")
    return compiled


def _describe(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else ""
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


def path_for_matching(path_info: str) -> str:
    """The request path without its leading slash, as patterns expect it.

    RE2 matches UTF-8: a lone surrogate (which no HTTP server decodes, but a caller
    might pass) becomes U+FFFD instead of raising ``UnicodeEncodeError``.
    """
    path = path_info[1:] if path_info.startswith("/") else path_info
    if not path.isascii():
        path = path.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return path


def path_matches(path_info: str, patterns: tuple[str, ...]) -> bool:
    """Whether any pattern matches the path (one RE2 program for all of them, see below)."""
    return matches(combined_matcher(patterns), path_info)


def matches(matcher: Matcher, path_info: str) -> bool:
    return matcher.match(path_for_matching(path_info)) is not None


class AnyOf:
    """Matches when any of its matchers does."""

    def __init__(self, matchers: Sequence[Matcher]) -> None:
        self.matchers = tuple(matchers)

    def match(self, text: str) -> object | None:
        return next((m for m in self.matchers if m.match(text) is not None), None)


@lru_cache(maxsize=256)
def combined_matcher(patterns: tuple[str, ...]) -> Matcher:
    """One RE2 program for many patterns, so a request costs one match however many there are.

    Patterns that do not compile are skipped and logged (those from settings are also
    reported by system check E004; bad database rows are skipped when they are loaded).
    """
    good: list[str] = []
    for pattern in patterns:
        try:
            if not isinstance(pattern, str):  # e.g. a compiled re.Pattern left in settings (E004)
                raise PatternError("not a string")
            compile_pattern(pattern)
        except PatternError:
            logger.warning("Skipping ignored URL pattern %r: it does not compile", pattern)
        else:
            good.append(pattern)
    if not good:
        return AnyOf(())
    try:
        return compile_pattern("|".join(f"(?:{normalise_pattern(p)})" for p in good))
    except PatternError:  # e.g. too large for one program: match them one by one
        return AnyOf([compile_pattern(p) for p in good])


# --- client IP -------------------------------------------------------------------------------


def parse_ip(value: str) -> IPAddress | None:
    """A bare IP address (IPv4-mapped IPv6 counts as IPv4), or None if ``value`` is not one."""
    value = value.strip()
    if not value or value != value.strip("[]"):
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_network(value: str) -> IPNetwork:
    """An address or CIDR network; host bits set are accepted as their network.

    An IPv6 zone id (``fe80::1%eth0``) is refused (check E004): ``ipaddress`` would match the entry
    in every zone, or drop the zone from a network, so it could let through another link's host.
    """
    value = value.strip()
    if "%" in value:
        raise ValueError(f"{value!r} has an IPv6 zone id")
    network = ipaddress.ip_network(value, strict=False)
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def networks(values: Iterable[Any]) -> tuple[IPNetwork, ...]:
    """Parse a settings list of addresses/CIDRs, skipping invalid entries (check E004)."""
    return _networks(tuple(str(value) for value in values))


@lru_cache(maxsize=64)
def _networks(values: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    parsed = []
    for value in values:
        try:
            parsed.append(parse_network(value))
        except ValueError:
            continue
    return tuple(parsed)


def in_networks(address: IPAddress, nets: Iterable[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in nets)


def client_allowed(meta: dict[str, Any], allowed: Sequence[IPNetwork], trusted_proxies: Sequence[IPNetwork]) -> bool:
    """Whether the client address (see :func:`client_ip`) is in one of the ``allowed`` networks."""
    if not allowed:
        return False
    address = client_ip(meta, trusted_proxies)
    return address is not None and in_networks(address, allowed)


def client_ip(meta: dict[str, Any], trusted_proxies: Sequence[IPNetwork]) -> IPAddress | None:
    """The client address: REMOTE_ADDR, or further left in X-Forwarded-For through trusted hops.

    Walk ``X-Forwarded-For`` right to left, starting from ``REMOTE_ADDR``; while the
    address reached is a trusted proxy, step to the next entry. The first untrusted
    address is the client. A malformed entry ends the walk at the last address reached.
    """
    address = parse_ip(str(meta.get("REMOTE_ADDR") or ""))
    if address is None or not trusted_proxies:
        return address
    forwarded = str(meta.get("HTTP_X_FORWARDED_FOR") or "")
    hops = forwarded.split(",") if forwarded else []
    for raw in reversed(hops):
        if not in_networks(address, trusted_proxies):
            break
        hop = parse_ip(raw)
        if hop is None:
            break
        address = hop
    return address


def is_staff_user(user: Any) -> bool:
    """An authenticated, active staff member or superuser.

    ``is_active`` is checked as Django's ``ModelBackend`` does (a user model without the field
    counts as active): with ``AllowAllUsersModelBackend`` an inactive account can be signed in,
    and it must not get past maintenance.
    """
    return bool(
        getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", True)
        and (getattr(user, "is_staff", False) or getattr(user, "is_superuser", False))
    )
