"""Admin: the "Site maintenance" page, a row per Site and one for every site: maintenance and
read-only checkboxes, the message, and where blocked browsers are sent and how often the page
reloads. Imported by ``admin.py`` when sites and waffle are installed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.sites.models import Site
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from maintenance_flags import bypass
from maintenance_flags.admin_pages import switch_permission
from maintenance_flags.audit import acting
from maintenance_flags.models import SiteMaintenance
from maintenance_flags.names import ALL_SITES_SWITCH, readonly_switch_name, site_switch_name
from maintenance_flags.snapshot import Snapshot, load_snapshot
from maintenance_flags.state import SiteState, state_for_site_id
from maintenance_flags.switch_options import redirect_target, refresh_seconds
from maintenance_flags.switches import set_switch

if TYPE_CHECKING:
    SiteMaintenanceAdminBase = admin.ModelAdmin[SiteMaintenance]
else:
    SiteMaintenanceAdminBase = admin.ModelAdmin


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
    #: set on the maintenance switch (not the read-only one): ``on --redirect``/``--refresh``
    redirect_url: str = ""
    refresh: int | None = None

    @property
    def label(self) -> str:
        return self.site.domain if self.site else _("all sites")


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
    def _row(key: str, site: Site | None, switch: str, snapshot: Snapshot, site_id: int | None) -> Row:
        ro_switch = readonly_switch_name(site_id)
        details = snapshot.details
        now = timezone.now()
        message = details.get(switch) or details.get(ro_switch)
        detail = details.get(switch)
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
            redirect_url=detail.redirect_url if detail else "",
            refresh=detail.refresh if detail else None,
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        can_change = self.has_change_permission(request)
        rows = self.rows()
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            problems = self._problems(request.POST, rows)
            if problems:  # nothing is saved: the page comes back as it was, with what to correct
                messages.error(request, _("Nothing was changed: %(problems)s.") % {"problems": "; ".join(problems)})
            elif changed := self._save(request, rows):
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

    @staticmethod
    def _problems(post: QueryDict, rows: list[Row]) -> list[str]:
        """What is wrong with the redirect and refresh fields, one sentence per field."""
        problems = []
        for row in rows:
            for field, parse in (("redirect", redirect_target), ("refresh", refresh_seconds)):
                try:
                    parse(post.get(f"{field}-{row.key}", ""))
                except ValueError as exc:
                    redirect = field == "redirect"
                    text = _("%(site)s, redirect: %(error)s") if redirect else _("%(site)s, refresh: %(error)s")
                    problems.append(text % {"site": row.label, "error": exc})
        return problems

    def _save(self, request: HttpRequest, rows: list[Row]) -> list[str]:
        """Apply what the user changed on the page (its redirect and refresh fields are valid).

        Rows are compared with what the page showed (hidden ``initial-*`` fields), not with the
        state now: a change made elsewhere meanwhile (another admin, ``setmaintenance``) is not
        undone by a form that was loaded before it. Without those fields, the state now is used.
        """
        post = request.POST
        shown = "_initial" in post
        changed = []
        with acting("admin", user=request.user, reason=post.get("reason", "").strip()):
            for row in rows:
                message = post.get(f"message-{row.key}", "").strip()
                was_on = f"initial-{row.key}" in post if shown else row.on
                was_readonly = f"initial-readonly-{row.key}" in post if shown else row.readonly
                old_message = post.get(f"initial-message-{row.key}", "") if shown else row.message
                on = row.key in post
                readonly = f"readonly-{row.key}" in post
                # None (keep) unless changed on the page: "" and 0 remove them.
                redirect: str | None = redirect_target(post.get(f"redirect-{row.key}", ""))
                if redirect == (post.get(f"initial-redirect-{row.key}", "").strip() if shown else row.redirect_url):
                    redirect = None
                refresh: int | None = refresh_seconds(post.get(f"refresh-{row.key}", ""))
                shown_refresh = _initial_refresh(post.get(f"initial-refresh-{row.key}", "")) if shown else row.refresh
                if refresh == (shown_refresh or 0):
                    refresh = None
                if on != was_on or (on and (message != old_message or redirect is not None or refresh is not None)):
                    set_switch(row.switch, on, message=message, redirect_url=redirect, refresh=refresh)
                    text = _("%(site)s: maintenance on") if on else _("%(site)s: maintenance off")
                    changed.append(text % {"site": row.label})
                if readonly != was_readonly or (readonly and message != old_message):
                    set_switch(row.readonly_switch, readonly, message=message)
                    text = _("%(site)s: read-only on") if readonly else _("%(site)s: read-only off")
                    changed.append(text % {"site": row.label})
        return changed


def _initial_refresh(raw: str) -> int:
    """The refresh the page showed; a value the page cannot have sent never equals a posted one."""
    try:
        return refresh_seconds(raw)
    except ValueError:
        return -1
