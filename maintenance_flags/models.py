"""Database models: ignored URLs, windows, switch details, the audit trail, bypass tokens."""

from __future__ import annotations

import secrets
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from maintenance_flags import redirects
from maintenance_flags.exemptions import PatternError, WholeSitePattern, check_pattern


def validate_pattern(value: str) -> None:
    """Reject a pattern that does not compile (with RE2, the engine used to match), or that
    matches every path (``^``, ``/``: the whole site would stay up during maintenance)."""
    try:
        check_pattern(value)
    except WholeSitePattern as exc:
        raise ValidationError(
            _("This pattern matches every path: the whole site would stay up during maintenance."),
            code="whole_site_pattern",
        ) from exc
    except PatternError as exc:
        raise ValidationError(
            _("Enter a valid regular expression (%(error)s)."),
            code="invalid_pattern",
            params={"error": str(exc)},
        ) from exc


def validate_redirect_url(value: str) -> None:
    """A path on this site (``/status/``) or an absolute http(s) URL: where blocked browsers go."""
    if not redirects.is_valid(value):
        raise ValidationError(
            _("Enter a path starting with / or an absolute http(s) URL."), code="invalid_redirect_url"
        )


def optional_site(help_text: Any) -> models.ForeignKey[Any]:
    """A Site, or none for "every site"; deleting the Site deletes the row."""
    return models.ForeignKey(
        "sites.Site",
        verbose_name=_("site"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text=help_text,
    )


class IgnoredURL(models.Model):
    """A path pattern that stays reachable while its site is in maintenance."""

    pattern = models.CharField(
        _("pattern"),
        max_length=255,
        validators=[validate_pattern],
        help_text=_(
            "A regular expression matched against the start of the path, without its "
            "leading slash: <code>^ignored-page/$</code> and <code>^/ignored-page/$</code> "
            "both exempt <code>/ignored-page/</code>."
        ),
    )
    site = optional_site(_("Leave empty to ignore this pattern on every site."))
    description = models.CharField(_("description"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("ignored URL")
        verbose_name_plural = _("ignored URLs")
        ordering = ("pattern", "pk")

    def __str__(self) -> str:
        return self.pattern


class MaintenanceWindow(models.Model):
    """A scheduled maintenance: the site (or every site) is in maintenance while it is open."""

    site = optional_site(_("Leave empty for every site."))
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True, help_text=_("Leave empty for no planned end."))
    message = models.TextField(
        _("message"), blank=True, help_text=_("Shown on the maintenance page, in JSON responses and in the banner.")
    )
    # Set once, by whichever server process first sees the window open/close (fleet-wide dedup).
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("maintenance window")
        verbose_name_plural = _("maintenance windows")
        ordering = ("-starts_at", "pk")
        indexes = [models.Index(fields=["ends_at"])]

    def __str__(self) -> str:
        where = self.site.domain if self.site is not None else _("all sites")
        end = f"{self.ends_at:%Y-%m-%d %H:%M}" if self.ends_at else "…"
        return f"{where}: {self.starts_at:%Y-%m-%d %H:%M} – {end}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A window moved back into the future (or extended) is open again: forget that it closed."""
        now = timezone.now()
        if self.closed_at is not None and (self.ends_at is None or self.ends_at > now):
            self.closed_at = None
            if self.starts_at > now:
                self.opened_at = None
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.ends_at is not None and self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("The end must be after the start.")})


class SwitchDetail(models.Model):
    """What goes with a maintenance switch: a message and a planned end (``on --for/--until``).

    Keyed by the waffle switch's name, so it also serves the global and the read-only switches.
    """

    switch_name = models.CharField(_("switch"), max_length=100, unique=True)
    message = models.TextField(_("message"), blank=True)
    ends_at = models.DateTimeField(_("planned end"), null=True, blank=True)
    redirect_url = models.CharField(
        _("redirect to"),
        max_length=2000,
        blank=True,
        validators=[validate_redirect_url],
        help_text=_("Send blocked browsers here instead of showing the page: a path or an http(s) URL."),
    )
    refresh = models.PositiveIntegerField(
        _("refresh after (seconds)"), null=True, blank=True, help_text=_("The page reloads itself after this long.")
    )

    class Meta:
        verbose_name = _("switch detail")
        verbose_name_plural = _("switch details")

    def __str__(self) -> str:
        return self.switch_name


class MaintenanceEvent(models.Model):
    """The audit trail: one row per real change of a maintenance or read-only state."""

    SOURCES = [
        ("admin", _("admin")),
        ("command", _("command")),
        ("schedule", _("schedule")),
        ("switch", _("switch")),
    ]

    site = models.ForeignKey(
        "sites.Site", verbose_name=_("site"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    switch_name = models.CharField(_("switch"), max_length=100, blank=True)
    active = models.BooleanField(_("active"))
    previous = models.BooleanField(_("was active"), null=True)
    readonly = models.BooleanField(_("read-only"), default=False)
    source = models.CharField(_("source"), max_length=20, choices=SOURCES)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.TextField(_("reason"), blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("maintenance event")
        verbose_name_plural = _("maintenance events")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"{self.switch_name or self.site_id} {'on' if self.active else 'off'} ({self.source})"


def new_secret() -> str:
    """A fresh per-token secret (the default of ``BypassToken.secret``)."""
    return secrets.token_urlsafe(16)


class BypassToken(models.Model):
    """A revocable bypass link/header token for one site (or every site).

    The link carries a signature over the row's id, its ``secret``, its site and its expiry.
    The secret is random per row, so a link never opens a later row that reuses the id (a
    flushed or restored database), and it is replaced when the token is revoked, so a revoked
    token's links stay dead even if ``revoked`` is cleared again.
    """

    label = models.CharField(_("label"), max_length=100, blank=True)
    site = optional_site(_("Leave empty for every site."))
    secret = models.CharField(max_length=64, default=new_secret, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    revoked = models.BooleanField(_("revoked"), default=False)

    class Meta:
        verbose_name = _("bypass token")
        verbose_name_plural = _("bypass tokens")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return self.label or f"#{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.revoked:  # revoking kills the links for good: a new secret they do not carry
            self.secret = new_secret()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "secret"}
        super().save(*args, **kwargs)


# Without django.contrib.sites (check E002) the app must still import cleanly, so the
# proxy that the "Site maintenance" admin page hangs on is defined only when Site exists.
if apps.is_installed("django.contrib.sites"):  # pragma: no branch - tested in a subprocess
    from django.contrib.sites.models import Site

    class SiteMaintenance(Site):
        """Sites, as listed on the admin's "Site maintenance" page (a proxy: no table)."""

        class Meta:
            proxy = True
            verbose_name = _("site maintenance")
            verbose_name_plural = _("site maintenance")
