"""Admin: "Site maintenance" (a row per Site and one for all sites), ignored URLs, windows,
the audit trail and bypass tokens. Imported by ``admin.py`` when sites and waffle are installed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.contrib.sites.models import Site
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from maintenance_flags import bypass
from maintenance_flags.audit import acting
from maintenance_flags.models import BypassToken, IgnoredURL, MaintenanceEvent, MaintenanceWindow, SiteMaintenance
from maintenance_flags.names import ALL_SITES_SWITCH, readonly_switch_name, site_switch_name, switch_model
from maintenance_flags.snapshot import load_snapshot
from maintenance_flags.state import SiteState, state_for_site_id
from maintenance_flags.switches import set_switch

if TYPE_CHECKING:
    from django.db.models import QuerySet

    IgnoredURLAdminBase = admin.ModelAdmin[IgnoredURL]
    SiteMaintenanceAdminBase = admin.ModelAdmin[SiteMaintenance]
    WindowAdminBase = admin.ModelAdmin[MaintenanceWindow]
    EventAdminBase = admin.ModelAdmin[MaintenanceEvent]
    TokenAdminBase = admin.ModelAdmin[BypassToken]
else:
    IgnoredURLAdminBase = SiteMaintenanceAdminBase = WindowAdminBase = EventAdminBase = TokenAdminBase = (
        admin.ModelAdmin
    )


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


@dataclass(frozen=True)
class Row:
    """One line of the "Site maintenance" page: a Site, or every site (``site`` None)."""

    key: str
    site: Site | None
    on: bool
    readonly: bool
    message: str
    state: SiteState
    switch: str
    readonly_switch: str


@admin.register(SiteMaintenance)
class SiteMaintenanceAdmin(SiteMaintenanceAdminBase):
    """One page listing every Site with an "In maintenance mode" checkbox, and "All sites"."""

    change_list_template = "admin/maintenance_flags/sitemaintenance/change_list.html"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return user.has_perm(switch_permission("view")) or user.has_perm(switch_permission("change"))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(switch_permission("change"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def rows(self) -> list[Row]:
        snapshot = load_snapshot()  # fresh from the database, with every Site
        rows = []
        for site in sorted(snapshot.sites_by_id.values(), key=lambda s: s.pk):
            rows.append(self._row(f"site-{site.pk}", site, site_switch_name(site.pk), snapshot, site.pk))
        rows.append(self._row("all-sites", None, ALL_SITES_SWITCH, snapshot, None))
        return rows

    @staticmethod
    def _row(key: str, site: Site | None, switch: str, snapshot: Any, site_id: int | None) -> Row:
        ro_switch = readonly_switch_name(site_id)
        details = snapshot.details
        now = timezone.now()
        message = details.get(switch) or details.get(ro_switch)
        state = state_for_site_id(snapshot, site_id, site)
        return Row(
            key=key,
            site=site,
            on=snapshot.switch_on(switch, now) is not None,  # a planned end that passed: off
            readonly=snapshot.switch_on(ro_switch, now) is not None,
            message=message.message if message else "",
            state=state,
            switch=switch,
            readonly_switch=ro_switch,
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        can_change = self.has_change_permission(request)
        rows = self.rows()
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            changed = self._save(request, rows)
            if changed:
                messages.success(request, _("Maintenance mode updated: %(changes)s.") % {"changes": ", ".join(changed)})
            else:
                messages.info(request, _("Nothing changed."))
            return HttpResponseRedirect(request.get_full_path())
        context = {
            **self.admin_site.each_context(request),
            "title": _("Site maintenance"),
            "opts": self.opts,
            "site_rows": rows[:-1],
            "all_row": rows[-1],
            "can_change": can_change,
            "history_url": reverse(f"{self.admin_site.name}:maintenance_flags_maintenanceevent_changelist"),
            "bypass_param": bypass.PARAM,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_list_template, context)

    def _save(self, request: HttpRequest, rows: list[Row]) -> list[str]:
        """Apply what the user changed on the page.

        Rows are compared with what the page showed (hidden ``initial-*`` fields), not with the
        state now: a change made elsewhere meanwhile (another admin, ``setmaintenance``) is not
        undone by a form that was loaded before it. Without those fields, the state now is used.
        """
        post = request.POST
        shown = "_initial" in post
        changed = []
        with acting("admin", user=request.user, reason=post.get("reason", "").strip()):
            for row in rows:
                label = row.site.domain if row.site else _("all sites")
                message = post.get(f"message-{row.key}", "").strip()
                was_on = f"initial-{row.key}" in post if shown else row.on
                was_readonly = f"initial-readonly-{row.key}" in post if shown else row.readonly
                old_message = post.get(f"initial-message-{row.key}", "") if shown else row.message
                on = row.key in post
                readonly = f"readonly-{row.key}" in post
                if on != was_on or (on and message != old_message):
                    set_switch(row.switch, on, message=message)
                    text = _("%(site)s: maintenance on") if on else _("%(site)s: maintenance off")
                    changed.append(text % {"site": label})
                if readonly != was_readonly or (readonly and message != old_message):
                    set_switch(row.readonly_switch, readonly, message=message)
                    text = _("%(site)s: read-only on") if readonly else _("%(site)s: read-only off")
                    changed.append(text % {"site": label})
        return changed


from maintenance_flags import waffle_admin  # noqa: E402,F401
