"""Property-based tests: hostile paths, addresses and patterns never raise and never grant a bypass.

The oracles below restate the contract (DESIGN.md "Who gets through" and "Client IP")
independently of the implementation; hypothesis searches for inputs where they disagree.
"""

from __future__ import annotations

import io
import ipaddress
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from asgiref.sync import async_to_sync
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from maintenance_flags import exemptions
from maintenance_flags import store as store_module
from maintenance_flags.decisions import evaluate
from maintenance_flags.middleware import MaintenanceModeMiddleware
from maintenance_flags.names import site_switch_name
from maintenance_flags.snapshot import Snapshot
from maintenance_flags.store import store

PROPERTY = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])

ALLOWED = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
TRUSTED = ["127.0.0.0/8", "::1", "fd00::/8"]
ALLOWED_NETS = [ipaddress.ip_network(n) for n in ALLOWED]
TRUSTED_NETS = [ipaddress.ip_network(n) for n in TRUSTED]

# --- strategies --------------------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=80)  # includes lone surrogates
segments = st.sampled_from(
    [
        *("admin", "ADMIN", "ignored-page", "", ".", "..", "%2F", "%2e%2e", "%61dmin", "admin%00", "%0A"),
        *("%E2%80%AE", "\x00", "é", "\uff53", "\u202e", "\n", " ", "a" * 64, "static", ";x=1", "%", "%ZZ", "%C3%28"),
    ]
)
url_paths = st.one_of(
    st.lists(st.one_of(segments, st.text(max_size=12)), max_size=12).map(lambda parts: "/" + "/".join(parts)),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=60).map(lambda text: "/" + text),
    st.integers(1_000, 20_000).map(lambda n: "/" + "ab/" * (n // 3)),
)

v4 = st.ip_addresses(v=4).map(str)
v6 = st.ip_addresses(v=6).map(str)
interesting_v4 = st.sampled_from(["10.1.2.3", "192.0.2.7", "127.0.0.1", "8.8.8.8", "0.0.0.0", "255.255.255.255"])
interesting_v6 = st.sampled_from(["2001:db8::1", "::1", "fd00::5", "fe80::1", "::", "2001:db9::1"])
zone = st.text("abcdefghijklmnopqrstuvwxyz0123456789%. ", min_size=1, max_size=8)
addresses = st.one_of(
    v4,
    v6,
    interesting_v4,
    interesting_v6,
    st.one_of(v4, interesting_v4).map(lambda ip: f"::ffff:{ip}"),
    st.tuples(st.one_of(v6, interesting_v6), zone).map(lambda t: f"{t[0]}%{t[1]}"),
)
hops = st.one_of(
    addresses,
    addresses.map(lambda ip: f"  {ip} "),
    st.tuples(interesting_v4, st.integers(0, 70000)).map(lambda t: f"{t[0]}:{t[1]}"),
    interesting_v6.map(lambda ip: f"[{ip}]"),
    st.tuples(interesting_v6, st.integers(0, 70000)).map(lambda t: f"[{t[0]}]:{t[1]}"),
    st.just(""),
    st.just("unknown"),
    any_text,
)
remote_addrs = st.one_of(hops, st.none())
forwarded = st.one_of(
    st.lists(hops, max_size=60).map(",".join),
    st.lists(hops, max_size=60).map(", ".join),
    any_text,
    st.none(),
)

# --- oracles (the contract, restated) ------------------------------------------------------------


def bare_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Contract: a bare IP address after trimming spaces; IPv4-mapped IPv6 counts as IPv4."""
    value = value.strip()
    if "[" in value or "]" in value:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def inside(address: Any, nets: list[Any]) -> bool:
    return any(address.version == net.version and address in net for net in nets)


def expected_client(remote: str | None, xff: str | None, trusted: list[Any]) -> Any:
    """Walk X-Forwarded-For right to left from REMOTE_ADDR while the address reached is trusted."""
    address = bare_ip(remote or "")
    if address is None:
        return None
    chain = (xff or "").split(",") if xff else []
    while chain and inside(address, trusted):
        hop = bare_ip(chain.pop())
        if hop is None:
            break
        address = hop
    return address


HEALTH_PATHS = re.compile(r"(healthz?|readyz|livez)/?\Z")
EXEMPT_VIEWS = ("exempt/", "async-exempt/")  # testproject's @maintenance_exempt views


def path_exempt(path_info: str) -> bool:
    """Patterns in force below: ^admin (settings), ^/ignored-page/$ (site 1), /static/ (every site),
    the default health-check paths, and the testproject's exempt views."""
    path = path_info[1:] if path_info.startswith("/") else path_info
    return (
        path.startswith(("admin", "static/"))
        or path == "ignored-page/"
        or path in EXEMPT_VIEWS
        or HEALTH_PATHS.match(path) is not None
    )


def meta_for(remote: str | None, xff: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if remote is not None:
        meta["REMOTE_ADDR"] = remote
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    return meta


def snapshot_on() -> Snapshot:
    return Snapshot(
        switches={site_switch_name(1): True},
        ignored=(
            (1, "^/ignored-page/$"),
            (2, "^.*"),  # another site's pattern never applies here
            (None, "/static/"),
        ),
    )


def build_request(path: str, remote: str | None, xff: str | None, **extra: Any) -> HttpRequest:
    """A request as a WSGI server hands it over: PATH_INFO percent-decoded, as latin-1 text.

    (Not ``RequestFactory.get``, which would read a path such as ``//[`` as a URL authority.)
    """
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": unquote_to_bytes(path).decode("iso-8859-1"),
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        **extra,
        **meta_for(remote, xff),
    }
    return WSGIRequest(environ)


# --- client IP -----------------------------------------------------------------------------------


@PROPERTY
@given(remote=remote_addrs, xff=forwarded)
@example(remote="10.0.0.1", xff="10.0.0.2")
@example(remote="fe80::1%eth0", xff=None)
def test_without_trusted_proxies_the_client_is_remote_addr(remote: str | None, xff: str | None) -> None:
    assert exemptions.client_ip(meta_for(remote, xff), ()) == bare_ip(remote or "")


@PROPERTY
@given(remote=remote_addrs, xff=forwarded)
@example(remote="127.0.0.1", xff="10.0.0.1, 127.0.0.2")
@example(remote="127.0.0.1", xff="10.0.0.1,[::1]")
@example(remote="::ffff:127.0.0.1", xff="::ffff:10.0.0.1")
def test_client_ip_walks_only_through_trusted_hops(remote: str | None, xff: str | None) -> None:
    found = exemptions.client_ip(meta_for(remote, xff), TRUSTED_NETS)
    assert found == expected_client(remote, xff, TRUSTED_NETS)
    if found is not None:
        candidates = {bare_ip(remote or ""), *(bare_ip(hop) for hop in (xff or "").split(","))}
        assert found in candidates


@PROPERTY
@given(value=st.one_of(hops, any_text, st.binary(max_size=40).map(lambda b: b.decode("latin-1"))))
def test_parse_ip_never_raises_and_accepts_only_bare_addresses(value: str) -> None:
    parsed = exemptions.parse_ip(value)
    assert parsed == bare_ip(value)
    if parsed is not None:
        assert parsed.version == 4 or parsed.ipv4_mapped is None


# --- patterns ------------------------------------------------------------------------------------


literal = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
# The body of a pattern after its lead: a leading "/" would itself be a lead (tested through ``lead``).
body_text = literal.filter(lambda text: not text.startswith("/"))


@PROPERTY
@given(body=body_text, lead=st.sampled_from(["^/", "/", "^", ""]))
def test_normalise_pattern_only_rewrites_the_leading_slash(body: str, lead: str) -> None:
    pattern = lead + re.escape(body)
    normalised = exemptions.normalise_pattern(pattern)
    assert normalised == ("^" + re.escape(body) if lead in ("^/", "/") else pattern)


@PROPERTY
@given(body=body_text, lead=st.sampled_from(["^/", "/", "^"]), path=st.one_of(literal, url_paths))
def test_slash_and_no_slash_patterns_exempt_the_same_paths(body: str, lead: str, path: str) -> None:
    """``^x``, ``^/x`` and ``/x`` all mean: the path (without its slash) starts with x."""
    stripped = path[1:] if path.startswith("/") else path
    assert exemptions.path_matches(path, (lead + re.escape(body),)) == stripped.startswith(body)


@PROPERTY
@given(path=st.one_of(any_text, url_paths), patterns=st.lists(any_text, max_size=4))
@example(path="/admin\udcff", patterns=["^admin"])
@example(path="\ud800", patterns=["."])
def test_matching_never_raises(path: str, patterns: list[str]) -> None:
    """Patterns that do not compile are skipped (and logged), whatever the path."""
    assert isinstance(exemptions.path_matches(path, tuple(patterns)), bool)
    assert isinstance(exemptions.path_matches(path, ("^admin",)), bool)


HOSTILE = ["^(a+)+$", "(a|aa)+$", "^(a|a?)+$", "(x+x+)+y", "(.*a){20}", "^(\\w+\\s?)*$", "(a*)*b", "((a+)+)+c"]


@pytest.mark.parametrize("pattern", HOSTILE)
def test_hostile_pattern_against_a_long_path_finishes_fast(pattern: str) -> None:
    exemptions.compile_pattern(pattern)  # RE2 accepts it
    paths = ["/" + "a" * 100_000 + "!", "/" + "a" * 30 + "!", "/" + "x" * 50_000, "/" + "ab " * 30_000]
    started = time.monotonic()
    for path in paths:
        exemptions.path_matches(path, (pattern,))
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=admin)", "(?<!x)admin", "((a{100}){100}){100}", "a{1001}", "("])
def test_patterns_re2_cannot_run_in_linear_time_are_refused(pattern: str) -> None:
    with pytest.raises(exemptions.PatternError):
        exemptions.compile_pattern(pattern)


# --- the middleware's decision -------------------------------------------------------------------


@PROPERTY
@override_settings(MAINTENANCE_ALLOWED_IPS=ALLOWED, INTERNAL_IPS=[], MAINTENANCE_TRUSTED_PROXIES=[])
@given(path=url_paths, remote=remote_addrs, xff=forwarded)
@example(path="/", remote="8.8.8.8", xff="10.0.0.1")
@example(path="//admin/", remote="8.8.8.8", xff=None)
@example(path="/ignored-page/%0A", remote="8.8.8.8", xff=None)
@example(path="//[", remote="", xff=None)
def test_spoofed_headers_never_bypass_without_trusted_proxies(path: str, remote: str | None, xff: str | None) -> None:
    request = build_request(path, remote, xff)
    verdict = evaluate(request, snapshot_on())
    address = bare_ip(remote or "")
    granted = path_exempt(request.path_info) or (address is not None and inside(address, ALLOWED_NETS))
    assert verdict.in_maintenance
    assert verdict.blocked is not granted
    assert verdict.needs_user is not granted


@PROPERTY
@override_settings(MAINTENANCE_ALLOWED_IPS=ALLOWED, INTERNAL_IPS=[], MAINTENANCE_TRUSTED_PROXIES=TRUSTED)
@given(path=url_paths, remote=remote_addrs, xff=forwarded)
@example(path="/", remote="127.0.0.1", xff="10.9.9.9")
@example(path="/", remote="127.0.0.1", xff="10.9.9.9, 8.8.8.8")
@example(path="/", remote="8.8.8.8", xff="10.9.9.9")
def test_bypass_through_trusted_proxies_only_as_the_contract_says(
    path: str, remote: str | None, xff: str | None
) -> None:
    request = build_request(path, remote, xff)
    verdict = evaluate(request, snapshot_on())
    client = expected_client(remote, xff, TRUSTED_NETS)
    granted = path_exempt(request.path_info) or (client is not None and inside(client, ALLOWED_NETS))
    assert verdict.blocked is not granted


@contextmanager
def primed(snapshot: Snapshot) -> Iterator[None]:
    """The store reads ``snapshot`` instead of the database (pytest-django would refuse a query)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "load_snapshot", lambda: snapshot)
        store.reset()
        try:
            yield
        finally:
            store.reset()


def ok_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


async def async_ok_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@FEW
@override_settings(MAINTENANCE_ALLOWED_IPS=ALLOWED, INTERNAL_IPS=[], MAINTENANCE_STATE_TTL=3600)
@given(
    path=url_paths,
    remote=remote_addrs,
    xff=forwarded,
    accept=st.one_of(st.none(), any_text.filter(lambda t: "\x00" not in t and "\n" not in t and "\r" not in t)),
    token=st.one_of(st.none(), st.text("abcdefABCDEF0123456789:-_.", max_size=60)),
)
@example(path="/", remote="8.8.8.8", xff="10.0.0.1", accept="application/json", token="x:y:z")
def test_middleware_sync_and_async_answer_200_or_503_and_never_raise(
    path: str, remote: str | None, xff: str | None, accept: str | None, token: str | None
) -> None:
    extra = {}
    if accept is not None:
        extra["HTTP_ACCEPT"] = accept
    if token is not None:
        extra["HTTP_X_MAINTENANCE_BYPASS"] = token
    address = bare_ip(remote or "")
    with primed(snapshot_on()):
        for view, call in ((ok_view, None), (async_ok_view, async_to_sync)):
            request = build_request(path, remote, xff, **extra)
            granted = path_exempt(request.path_info) or (address is not None and inside(address, ALLOWED_NETS))
            middleware = MaintenanceModeMiddleware(view)
            response = call(middleware)(request) if call else middleware(request)
            assert response.status_code == (200 if granted else 503), (path, remote, xff)
            if not granted:
                assert response["X-Maintenance-Mode"] == "on"
