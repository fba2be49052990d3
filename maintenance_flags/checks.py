"""System checks ``maintenance_flags.E001``–``E004``, ``W001``, ``W002`` (see README)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from maintenance_flags import exemptions
from maintenance_flags.conf import FAIL_MODES

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


def _check_ip_list(name: str, default: Sequence[str] = ()) -> list[CheckMessage]:
    value = getattr(settings, name, default)
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return [_setting_error(name, "must be a list of IP addresses or CIDR networks")]
    bad = []
    for entry in value:
        try:
            exemptions.parse_network(str(entry))
        except ValueError:
            bad.append(entry)
    if bad:
        listed = ", ".join(repr(b) for b in bad)
        return [_setting_error(name, f"has entries that are not IP addresses or CIDR networks: {listed}")]
    return []


def _check_number(name: str, minimum: float, integer: bool) -> list[CheckMessage]:
    if not hasattr(settings, name):
        return []
    value = getattr(settings, name)
    kinds: tuple[type[int] | type[float], ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        kind = "an integer" if integer else "a number"
        return [_setting_error(name, f"must be {kind} >= {minimum}, not {value!r}")]
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
    errors += _check_number("MAINTENANCE_RETRY_AFTER", 0, integer=True)
    for name in ("MAINTENANCE_BLOCK_STAFF", "MAINTENANCE_503_PRERENDER"):
        if not isinstance(getattr(settings, name, False), bool):
            errors.append(_setting_error(name, "must be True or False"))
    errors += _check_number("MAINTENANCE_ANNOUNCE_BEFORE", 0, integer=False)
    for name in ("MAINTENANCE_ADMIN_IGNORED_URLS", "MAINTENANCE_HEALTH_CHECK_URLS"):
        errors += _check_patterns(name)
    names = getattr(settings, "MAINTENANCE_IGNORED_URL_NAMES", [])
    if isinstance(names, str) or not hasattr(names, "__iter__") or not all(isinstance(n, str) for n in names):
        errors.append(_setting_error("MAINTENANCE_IGNORED_URL_NAMES", "must be a list of URL names (strings)"))
    template = getattr(settings, "MAINTENANCE_503_TEMPLATE", None)
    if template is not None and not isinstance(template, str):
        errors.append(_setting_error("MAINTENANCE_503_TEMPLATE", "must be a template name (a string)"))
    return errors


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
