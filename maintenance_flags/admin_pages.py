"""Admin: ignored URLs, windows, the audit trail and bypass tokens ("Site maintenance" is in
``admin_site_page.py``). Imported by ``admin.py`` when sites and waffle are installed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.contrib.sites.models import Site
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from maintenance_flags import bypass
from maintenance_flags.models import BypassToken, IgnoredURL, MaintenanceEvent, MaintenanceWindow
from maintenance_flags.names import switch_model

if TYPE_CHECKING:
    from django.db.models import QuerySet

    IgnoredURLAdminBase = admin.ModelAdmin[IgnoredURL]
    WindowAdminBase = admin.ModelAdmin[MaintenanceWindow]
    EventAdminBase = admin.ModelAdmin[MaintenanceEvent]
    TokenAdminBase = admin.ModelAdmin[BypassToken]
else:
    IgnoredURLAdminBase = WindowAdminBase = EventAdminBase = TokenAdminBase = admin.ModelAdmin


def switch_permission(action: str) -> str:
    """``waffle.change_switch`` and the like, for whatever model ``WAFFLE_SWITCH_MODEL`` names."""
    opts = switch_model()._meta
    return f"{opts.app_label}.{get_permission_codename(action, opts)}"


@admin.register(IgnoredURL)
class IgnoredURLAdmin(IgnoredURLAdminBase):
    list_display = ("pattern", "site", "description")
    list_filter = ("site",)
    search_fields = ("pattern", "description")


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(WindowAdminBase):
    list_display = ("starts_at", "ends_at", "site", "message", "opened_at", "closed_at")
    list_filter = ("site",)
    date_hierarchy = "starts_at"
    readonly_fields = ("opened_at", "closed_at")


@admin.register(MaintenanceEvent)
class MaintenanceEventAdmin(EventAdminBase):
    """The audit trail: read-only."""

    list_display = ("created_at", "site", "switch_name", "active", "readonly", "source", "user", "reason")
    list_filter = ("source", "active", "readonly", "site")
    search_fields = ("reason", "switch_name")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description=gettext_lazy("Revoke selected bypass tokens"), permissions=["change"])
def revoke_tokens(modeladmin: Any, request: HttpRequest, queryset: QuerySet[BypassToken]) -> None:
    bypass.revoke_tokens(queryset)


class BypassLinkForm(forms.Form):
    site = forms.ModelChoiceField(  # empty: a token that opens every site
        queryset=Site.objects.order_by("pk"),
        label=gettext_lazy("Site"),
        required=False,
        empty_label=gettext_lazy("Every site"),
    )
    minutes = forms.IntegerField(
        label=gettext_lazy("Valid for (minutes)"),
        min_value=1,
        max_value=bypass.MAX_MINUTES,
        initial=bypass.DEFAULT_MINUTES,
    )
    label = forms.CharField(label=gettext_lazy("Label"), max_length=100, required=False)


@admin.register(BypassToken)
class BypassTokenAdmin(TokenAdminBase):
    """Issue bypass links ("Add": the link is shown once) and revoke tokens (the list action)."""

    list_display = ("pk", "label", "site_display", "created_at", "expires_at", "revoked")
    list_filter = ("revoked",)
    list_select_related = ("site",)
    actions = [revoke_tokens]
    # Nothing is edited here: a token's site and lifetime are signed into its links, and a
    # revoked token never comes back (the revoke action needs the change permission).
    readonly_fields = ("label", "site", "created_at", "expires_at", "revoked")

    @admin.display(description=gettext_lazy("site"), ordering="site")
    def site_display(self, obj: BypassToken) -> str:
        return obj.site.domain if obj.site is not None else _("every site")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(switch_permission("change")))

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = BypassLinkForm(request.POST or None, initial={"site": Site.objects.order_by("pk").first()})
        if request.method == "POST" and form.is_valid():
            site = form.cleaned_data["site"]
            row, token = bypass.issue(
                form.cleaned_data["minutes"], form.cleaned_data["label"], site_id=site.pk if site else None
            )
            host = site.domain if site else request.get_host()  # every site: the host this admin is on
            url = f"{request.scheme}://{host}/?{bypass.PARAM}={token}"
            messages.success(
                request,
                format_html(
                    "{} <code>{}</code>",
                    _("Bypass link #%(id)s, valid until %(end)s (copy it now: it is not shown again):")
                    % {"id": row.pk, "end": row.expires_at},
                    url,
                ),
            )
            return HttpResponseRedirect(reverse(f"{self.admin_site.name}:maintenance_flags_bypasstoken_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Issue a bypass link"),
            "opts": self.opts,
            "form": form,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/maintenance_flags/bypasstoken/issue.html", context)


from maintenance_flags import waffle_admin  # noqa: E402,F401
