"""Typed access to the ``MAINTENANCE_*`` settings, read at use time.

Reading at use time (rather than import time) is what makes ``override_settings`` work in
tests. Values are memoised until Django's ``setting_changed`` signal (sent by
``override_settings``): reading a setting through ``django.conf.settings`` costs several
microseconds, and the middleware reads a few on every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, TypeVar

from django.conf import settings
from django.core.signals import setting_changed

DEFAULT_ADMIN_IGNORED_URLS = ("^admin",)
DEFAULT_HEALTH_CHECK_URLS = ("^healthz/?$", "^readyz/?$", "^livez/?$", "^health/?$")
DEFAULT_ANNOUNCE_BEFORE = 86400
DEFAULT_RETRY_AFTER = 3600
DEFAULT_STATE_TTL = 2.0
FAIL_MODES = ("closed", "open")


_T = TypeVar("_T")


def _setting(name: str, default: _T) -> _T:
    value: _T = getattr(settings, name, default)
    return value


def _number(name: str, default: float, cast: type[int] | type[float]) -> Any:
    """A numeric setting; a wrong value (reported by check E004) falls back to the default."""
    try:
        return cast(_setting(name, default))
    except (TypeError, ValueError):
        return cast(default)


def forget_settings(**kwargs: Any) -> None:
    """Drop the memo (connected to ``setting_changed``; call it after assigning to settings directly)."""
    conf.__dict__.clear()


setting_changed.connect(forget_settings, dispatch_uid="maintenance_flags.conf.forget_settings")


class Settings:
    """One property per setting, memoised in the instance: after the first read, a setting is a
    plain attribute lookup. Defaults live here and nowhere else."""

    @cached_property
    def generation(self) -> object:
        """An object replaced whenever settings change: part of the key of memos derived from them."""
        return object()

    @cached_property
    def MAINTENANCE_503_TEMPLATE(self) -> str | None:
        return _setting("MAINTENANCE_503_TEMPLATE", None)

    @cached_property
    def MAINTENANCE_503_PRERENDER(self) -> bool:
        return _setting("MAINTENANCE_503_PRERENDER", False) is True

    @cached_property
    def MAINTENANCE_ADMIN_IGNORED_URLS(self) -> Sequence[str]:
        return _setting("MAINTENANCE_ADMIN_IGNORED_URLS", DEFAULT_ADMIN_IGNORED_URLS)

    @cached_property
    def MAINTENANCE_HEALTH_CHECK_URLS(self) -> Sequence[str]:
        return _setting("MAINTENANCE_HEALTH_CHECK_URLS", DEFAULT_HEALTH_CHECK_URLS)

    @cached_property
    def MAINTENANCE_IGNORED_URL_NAMES(self) -> Sequence[str]:
        return _setting("MAINTENANCE_IGNORED_URL_NAMES", ())

    @cached_property
    def MAINTENANCE_ANNOUNCE_BEFORE(self) -> float:
        return float(_number("MAINTENANCE_ANNOUNCE_BEFORE", DEFAULT_ANNOUNCE_BEFORE, float))

    @cached_property
    def MAINTENANCE_BLOCK_STAFF(self) -> bool:
        return bool(_setting("MAINTENANCE_BLOCK_STAFF", False))

    @cached_property
    def MAINTENANCE_ALLOWED_IPS(self) -> Sequence[str]:
        return _setting("MAINTENANCE_ALLOWED_IPS", ())

    @cached_property
    def INTERNAL_IPS(self) -> Sequence[str]:
        return _setting("INTERNAL_IPS", ())

    @cached_property
    def MAINTENANCE_TRUSTED_PROXIES(self) -> Sequence[str]:
        return _setting("MAINTENANCE_TRUSTED_PROXIES", ())

    @cached_property
    def MAINTENANCE_RETRY_AFTER(self) -> int:
        return int(_number("MAINTENANCE_RETRY_AFTER", DEFAULT_RETRY_AFTER, int))

    @cached_property
    def MAINTENANCE_STATE_TTL(self) -> float:
        return float(_number("MAINTENANCE_STATE_TTL", DEFAULT_STATE_TTL, float))

    @cached_property
    def MAINTENANCE_FAIL_MODE(self) -> str:
        return str(_setting("MAINTENANCE_FAIL_MODE", "closed"))

    @cached_property
    def SITE_ID(self) -> int | None:
        return _setting("SITE_ID", None)


conf = Settings()
