"""Admin: the "Site maintenance" page (a checkbox per Site) and the ignored URLs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.sites.models import Site
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from maintenance_flags.models import IgnoredURL, SiteMaintenance
from maintenance_flags.state import ALL_SITES_SWITCH, set_switch, site_switch_name, store, switch_model

if TYPE_CHECKING:
    IgnoredURLAdminBase = admin.ModelAdmin[IgnoredURL]
    SiteMaintenanceAdminBase = admin.ModelAdmin[SiteMaintenance]
else:
    IgnoredURLAdminBase = SiteMaintenanceAdminBase = admin.ModelAdmin

SWITCH_PERMISSION = "waffle.change_switch"
SWITCH_VIEW_PERMISSION = "waffle.view_switch"


@admin.register(IgnoredURL)
class IgnoredURLAdmin(IgnoredURLAdminBase):
    list_display = ("pattern", "site", "description")
    list_filter = ("site",)
    search_fields = ("pattern", "description")


@admin.register(SiteMaintenance)
class SiteMaintenanceAdmin(SiteMaintenanceAdminBase):
    """One page listing every Site with an "In maintenance mode" checkbox, and "All sites"."""

    change_list_template = "admin/maintenance_flags/sitemaintenance/change_list.html"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return user.has_perm(SWITCH_VIEW_PERMISSION) or user.has_perm(SWITCH_PERMISSION)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(SWITCH_PERMISSION)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        from django.urls import path

        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        sites = list(Site.objects.order_by("pk"))
        names = [ALL_SITES_SWITCH, *(site_switch_name(site.pk) for site in sites)]
        active = dict(switch_model().objects.filter(name__in=names).values_list("name", "active"))
        can_change = self.has_change_permission(request)
        if request.method == "POST":
            if not can_change:
                from django.core.exceptions import PermissionDenied

                raise PermissionDenied
            changed = self._save(request, sites, active)
            if changed:
                messages.success(request, _("Maintenance mode updated: %(changes)s.") % {"changes": ", ".join(changed)})
            else:
                messages.info(request, _("Nothing changed."))
            return HttpResponseRedirect(request.get_full_path())
        rows = [(site, active.get(site_switch_name(site.pk), False)) for site in sites]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Site maintenance"),
            "opts": self.opts,
            "rows": rows,
            "all_sites": active.get(ALL_SITES_SWITCH, False),
            "can_change": can_change,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_list_template, context)

    def _save(self, request: HttpRequest, sites: list[Site], active: dict[str, bool]) -> list[str]:
        wanted = {site_switch_name(site.pk): f"site-{site.pk}" in request.POST for site in sites}
        wanted[ALL_SITES_SWITCH] = "all-sites" in request.POST
        labels = {site_switch_name(site.pk): site.domain for site in sites}
        labels[ALL_SITES_SWITCH] = _("all sites")
        changed = []
        for name, on in wanted.items():
            if active.get(name, False) != on:
                set_switch(name, on)
                changed.append(f"{labels[name]} {_('on') if on else _('off')}")
        store.invalidate()
        return changed


from maintenance_flags import waffle_admin  # noqa: E402,F401
