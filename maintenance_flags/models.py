"""Database models: ignored URL patterns, and the admin's view of Sites."""

from __future__ import annotations

from django.contrib.sites.models import Site
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from maintenance_flags.exemptions import PatternError, compile_pattern


def validate_pattern(value: str) -> None:
    """Reject a pattern that does not compile (with RE2, the engine used to match)."""
    try:
        compile_pattern(value)
    except PatternError as exc:
        raise ValidationError(
            _("Enter a valid regular expression (%(error)s)."),
            code="invalid_pattern",
            params={"error": str(exc)},
        ) from exc


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
    site = models.ForeignKey(
        Site,
        verbose_name=_("site"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Leave empty to ignore this pattern on every site."),
    )
    description = models.CharField(_("description"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("ignored URL")
        verbose_name_plural = _("ignored URLs")
        ordering = ("pattern", "pk")

    def __str__(self) -> str:
        return self.pattern


class SiteMaintenance(Site):
    """Sites, as listed on the admin's "Site maintenance" page (a proxy: no table)."""

    class Meta:
        proxy = True
        verbose_name = _("site maintenance")
        verbose_name_plural = _("site maintenance")
