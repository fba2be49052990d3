"""System checks ``maintenance_flags.E001``–``E004``, ``W001``–``W004`` (see README)."""

from __future__ import annotations

import re
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from maintenance_flags import exemptions, redirects
from maintenance_flags.conf import FAIL_MODES, MAX_REFRESH, MAX_RETRY_AFTER, is_names

MIDDLEWARE_PATH = "maintenance_flags.middleware.MaintenanceModeMiddleware"
AUTH_MIDDLEWARE_PATH = "django.contrib.auth.middleware.AuthenticationMiddleware"
REQUEST_PROCESSOR = "django.template.context_processors.request"


@register()
def check_middleware(**kwargs: Any) -> list[CheckMessage]:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if MIDDLEWARE_PATH not in middleware:
        return [
            Warning(
                f"{MIDDLEWARE_PATH} is not in MIDDLEWARE: maintenance mode has no effect.",
                hint=f"Add it to MIDDLEWARE after {AUTH_MIDDLEWARE_PATH}.",
                id="maintenance_flags.W001",
            )
        ]
    if AUTH_MIDDLEWARE_PATH in middleware and middleware.index(AUTH_MIDDLEWARE_PATH) > middleware.index(
        MIDDLEWARE_PATH
    ):
        return [
            Error(
                f"{MIDDLEWARE_PATH} is placed before {AUTH_MIDDLEWARE_PATH}: staff cannot be recognised.",
                hint="Move it after AuthenticationMiddleware in MIDDLEWARE.",
                id="maintenance_flags.E001",
            )
        ]
    return []


@register()
def check_installed_apps(**kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if not apps.is_installed("django.contrib.sites"):
        errors.append(
            Error(
                "django.contrib.sites is not in INSTALLED_APPS: maintenance is kept per Site.",
                hint="Add 'django.contrib.sites' to INSTALLED_APPS.",
                id="maintenance_flags.E002",
            )
        )
    if not apps.is_installed("waffle"):
        errors.append(
            Error(
                "waffle is not in INSTALLED_APPS: maintenance is kept in waffle switches.",
                hint="Add 'waffle' (django-waffle) to INSTALLED_APPS.",
                id="maintenance_flags.E003",
            )
        )
    return errors


def _setting_error(name: str, problem: str) -> Error:
    return Error(f"{name} {problem}.", id="maintenance_flags.E004")


def _ip_list(name: str) -> list[Any] | None:
    """The setting's entries, or None when it is not a list (E004)."""
    value = getattr(settings, name, ())
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return None
    return list(value)


def _check_ip_list(name: str) -> list[CheckMessage]:
    entries = _ip_list(name)
    if entries is None:
        return [_setting_error(name, "must be a list of IP addresses or CIDR networks")]
    bad: list[Any] = []
    zoned: list[Any] = []
    for entry in entries:
        try:
            exemptions.parse_network(str(entry))
        except ValueError:
            (zoned if "%" in str(entry) else bad).append(entry)
    errors: list[CheckMessage] = []
    if bad:
        listed = ", ".join(repr(b) for b in bad)
        errors.append(_setting_error(name, f"has entries that are not IP addresses or CIDR networks: {listed}"))
    if zoned:
        listed = ", ".join(repr(z) for z in zoned)
        errors.append(
            Error(
                f"{name} has IPv6 addresses with a zone id, which are ignored: {listed}. An address is "
                "matched whatever interface it came from, so a zone id cannot be honoured.",
                hint=f"Write the address without its zone id ({str(zoned[0]).split('%')[0]!r}), "
                "or use a network, if every interface may be allowed.",
                id="maintenance_flags.E004",
            )
        )
    return errors


def _check_number(name: str, minimum: float, integer: bool, maximum: float | None = None) -> list[CheckMessage]:
    if not hasattr(settings, name):
        return []
    value = getattr(settings, name)
    kinds: tuple[type[int] | type[float], ...] = (int,) if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        kind = "an integer" if integer else "a number"
        bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        return [_setting_error(name, f"must be {kind} {bounds}, not {value!r}")]
    return []


def _check_patterns(name: str) -> list[CheckMessage]:
    patterns = getattr(settings, name, [])
    if isinstance(patterns, str) or not hasattr(patterns, "__iter__"):
        return [_setting_error(name, "must be a list of regular expressions")]
    errors: list[CheckMessage] = []
    for pattern in patterns:
        try:
            exemptions.compile_pattern(str(pattern))
        except exemptions.PatternError as exc:
            errors.append(_setting_error(name, f"has a bad pattern {pattern!r} ({exc})"))
    return errors


@register()
def check_settings(**kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    fail_mode = getattr(settings, "MAINTENANCE_FAIL_MODE", "closed")
    if fail_mode not in FAIL_MODES:
        errors.append(_setting_error("MAINTENANCE_FAIL_MODE", f'must be "closed" or "open", not {fail_mode!r}'))
    for name in ("MAINTENANCE_ALLOWED_IPS", "MAINTENANCE_TRUSTED_PROXIES", "INTERNAL_IPS"):
        errors += _check_ip_list(name)
    errors += _check_number("MAINTENANCE_STATE_TTL", 0, integer=False)
    errors += _check_number("MAINTENANCE_RETRY_AFTER", 0, integer=True, maximum=MAX_RETRY_AFTER)
    errors += _check_number("MAINTENANCE_STATUS_CODE", 400, integer=True, maximum=599)
    if getattr(settings, "MAINTENANCE_REFRESH", None) is not None:
        errors += _check_number("MAINTENANCE_REFRESH", 1, integer=True, maximum=MAX_REFRESH)
    redirect = getattr(settings, "MAINTENANCE_REDIRECT_URL", None)
    if redirect is not None and not redirects.is_valid(redirect):
        problem = f"must be a path starting with / or an absolute http(s) URL, not {redirect!r}"
        errors.append(_setting_error("MAINTENANCE_REDIRECT_URL", problem))
    for name in ("MAINTENANCE_BLOCK_STAFF", "MAINTENANCE_503_PRERENDER", "MAINTENANCE_LOGOUT_USERS"):
        if not isinstance(getattr(settings, name, False), bool):
            errors.append(_setting_error(name, "must be True or False"))
    errors += _check_number("MAINTENANCE_ANNOUNCE_BEFORE", 0, integer=False)
    for name in ("MAINTENANCE_ADMIN_IGNORED_URLS", "MAINTENANCE_HEALTH_CHECK_URLS"):
        errors += _check_patterns(name)
    names = getattr(settings, "MAINTENANCE_IGNORED_URL_NAMES", [])
    if isinstance(names, str) or not hasattr(names, "__iter__") or not all(isinstance(n, str) for n in names):
        errors.append(_setting_error("MAINTENANCE_IGNORED_URL_NAMES", "must be a list of URL names (strings)"))
    for name, what in (("MAINTENANCE_CELERY_EXEMPT_QUEUES", "queue"), ("MAINTENANCE_CELERY_BEAT_ALLOWED", "task")):
        if not is_names(getattr(settings, name, [])):
            errors.append(_setting_error(name, f"must be a list of {what} names (strings)"))
    errors += _check_state_cache()
    template = getattr(settings, "MAINTENANCE_503_TEMPLATE", None)
    if template is not None and not isinstance(template, str):
        errors.append(_setting_error("MAINTENANCE_503_TEMPLATE", "must be a template name (a string)"))
    return errors


def _check_state_cache() -> list[CheckMessage]:
    alias = getattr(settings, "MAINTENANCE_STATE_CACHE", None)
    if alias is None:
        return []
    if not isinstance(alias, str):
        return [_setting_error("MAINTENANCE_STATE_CACHE", f"must be the name of a cache in CACHES, not {alias!r}")]
    if alias not in getattr(settings, "CACHES", {}):
        return [_setting_error("MAINTENANCE_STATE_CACHE", f"names {alias!r}, which is not in CACHES")]
    return []


ALLOW_LISTS = ("INTERNAL_IPS", "MAINTENANCE_ALLOWED_IPS")


@register()
def check_trusted_proxies(**kwargs: Any) -> list[CheckMessage]:
    """A trusted proxy must not be an allowed address: when the last X-Forwarded-For hop it sends is
    missing or malformed, the walk stops at the proxy, so every visitor coming through it would pass."""
    proxies = exemptions.networks(_ip_list("MAINTENANCE_TRUSTED_PROXIES") or ())
    warnings: list[CheckMessage] = []
    for name in ALLOW_LISTS:
        allowed = exemptions.networks(_ip_list(name) or ())
        overlaps = [
            str(min(proxy, net, key=lambda n: n.num_addresses))
            for proxy in proxies
            for net in allowed
            if proxy.version == net.version and proxy.overlaps(net)
        ]
        if overlaps:
            warnings.append(
                Warning(
                    f"MAINTENANCE_TRUSTED_PROXIES overlaps {name} ({', '.join(dict.fromkeys(overlaps))}): "
                    "a request through such a proxy whose last X-Forwarded-For hop is missing or malformed "
                    "(e.g. an address with a port) is taken to come from the proxy itself, which is allowed, "
                    "so any visitor can get past maintenance.",
                    hint=f"Remove the proxies' addresses from {name} (narrow its networks so that they leave "
                    "the proxies out), and allow visitors by their own addresses.",
                    id="maintenance_flags.W004",
                )
            )
    return warnings


@register()
def check_request_context_processor(**kwargs: Any) -> list[CheckMessage]:
    for engine in getattr(settings, "TEMPLATES", []):
        if engine.get("BACKEND") != "django.template.backends.django.DjangoTemplates":
            continue
        processors = engine.get("OPTIONS", {}).get("context_processors", [])
        if REQUEST_PROCESSOR in processors:
            return []
    return [
        Warning(
            f"'{REQUEST_PROCESSOR}' is not in TEMPLATES' context_processors: "
            "{% maintenance_banner %} needs the request to render.",
            hint=f"Add '{REQUEST_PROCESSOR}' to the DjangoTemplates OPTIONS['context_processors'].",
            id="maintenance_flags.W002",
        )
    ]


# What a page shown to many visitors must not use: each is specific to the visitor it was made for.
VISITOR_NAMES = frozenset({"request", "user", "perms", "csrf_token", "messages"})
_TAG = re.compile(r"{{(.*?)}}|{%(.*?)%}", re.DOTALL)
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"{%\s*(?:extends|include)\s+[\"']([^\"']+)[\"']")


def visitor_specific_names(source: str, load: Any, seen: set[str] | None = None) -> set[str]:
    """The visitor-specific names a template uses, following literal ``extends``/``include``.

    ``load(name)`` returns a template's source. A heuristic for a warning: names inside
    ``{{ }}`` and ``{% %}`` outside quoted strings.
    """
    seen = set() if seen is None else seen
    found: set[str] = set()
    for variable, tag in _TAG.findall(source):
        found.update(n for n in _NAME.findall(_QUOTED.sub("", variable or tag)) if n in VISITOR_NAMES)
    for name in _REFERENCE.findall(source):
        if name not in seen:
            seen.add(name)
            try:
                found |= visitor_specific_names(load(name), load, seen)
            except Exception:  # a missing or broken template is reported when it renders
                continue
    return found


@register(Tags.templates)
def check_prerendered_page(**kwargs: Any) -> list[CheckMessage]:
    if getattr(settings, "MAINTENANCE_503_PRERENDER", False) is not True:
        return []
    from django.template.loader import select_template

    from maintenance_flags.responses import template_names

    try:
        template = select_template(template_names())
        engine = template.template.engine
        found = visitor_specific_names(template.template.source, lambda name: engine.get_template(name).source)
    except Exception:  # no template, or not a Django template: nothing to look at
        return []
    if not found:
        return []
    listed = ", ".join(sorted("{% csrf_token %}" if n == "csrf_token" else n for n in found))
    return [
        Warning(
            f"MAINTENANCE_503_PRERENDER is on, but the maintenance page {template.template.name!r} uses {listed}: "
            "the page rendered for one visitor would be shown to every visitor (a CSRF token would leak).",
            hint="Remove them from the page (and the templates it extends or includes), or unset "
            "MAINTENANCE_503_PRERENDER.",
            id="maintenance_flags.W003",
        )
    ]
