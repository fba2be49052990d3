"""Typed access to the ``MAINTENANCE_*`` settings, read on every access.

Reading at use time (rather than import time) is what makes
``override_settings`` work in tests and keeps this module free of state.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

DEFAULT_ADMIN_IGNORED_URLS = ("^admin",)
DEFAULT_HEALTH_CHECK_URLS = ("^healthz?/?$", "^readyz?/?$", "^livez?/?$", "^ping/?$")
DEFAULT_ANNOUNCE_BEFORE = 86400
DEFAULT_RETRY_AFTER = 3600
DEFAULT_STATE_TTL = 2.0
FAIL_MODES = ("closed", "open")


class Settings:
    """One property per setting; defaults live here and nowhere else."""

    @property
    def MAINTENANCE_503_TEMPLATE(self) -> str | None:
        return getattr(settings, "MAINTENANCE_503_TEMPLATE", None)

    @property
    def MAINTENANCE_ADMIN_IGNORED_URLS(self) -> Sequence[str]:
        return getattr(settings, "MAINTENANCE_ADMIN_IGNORED_URLS", DEFAULT_ADMIN_IGNORED_URLS)

    @property
    def MAINTENANCE_HEALTH_CHECK_URLS(self) -> Sequence[str]:
        return getattr(settings, "MAINTENANCE_HEALTH_CHECK_URLS", DEFAULT_HEALTH_CHECK_URLS)

    @property
    def MAINTENANCE_IGNORED_URL_NAMES(self) -> Sequence[str]:
        return getattr(settings, "MAINTENANCE_IGNORED_URL_NAMES", ())

    @property
    def MAINTENANCE_ANNOUNCE_BEFORE(self) -> float:
        return float(getattr(settings, "MAINTENANCE_ANNOUNCE_BEFORE", DEFAULT_ANNOUNCE_BEFORE))

    @property
    def MAINTENANCE_BLOCK_STAFF(self) -> bool:
        return bool(getattr(settings, "MAINTENANCE_BLOCK_STAFF", False))

    @property
    def MAINTENANCE_ALLOWED_IPS(self) -> Sequence[str]:
        return getattr(settings, "MAINTENANCE_ALLOWED_IPS", ())

    @property
    def INTERNAL_IPS(self) -> Sequence[str]:
        return getattr(settings, "INTERNAL_IPS", ())

    @property
    def MAINTENANCE_TRUSTED_PROXIES(self) -> Sequence[str]:
        return getattr(settings, "MAINTENANCE_TRUSTED_PROXIES", ())

    @property
    def MAINTENANCE_RETRY_AFTER(self) -> int:
        return int(getattr(settings, "MAINTENANCE_RETRY_AFTER", DEFAULT_RETRY_AFTER))

    @property
    def MAINTENANCE_STATE_TTL(self) -> float:
        return float(getattr(settings, "MAINTENANCE_STATE_TTL", DEFAULT_STATE_TTL))

    @property
    def MAINTENANCE_FAIL_MODE(self) -> str:
        return str(getattr(settings, "MAINTENANCE_FAIL_MODE", "closed"))

    @property
    def SITE_ID(self) -> int | None:
        return getattr(settings, "SITE_ID", None)


conf = Settings()
