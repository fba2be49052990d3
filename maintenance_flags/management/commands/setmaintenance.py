"""``manage.py setmaintenance``: maintenance, read-only mode, windows, bypass links, history."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections, router
from django.http.request import split_domain_port
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from maintenance_flags import bypass
from maintenance_flags.audit import Acting, acting
from maintenance_flags.conf import conf
from maintenance_flags.names import ALL_SITES_SWITCH, readonly_switch_name, site_switch_name
from maintenance_flags.schema import database_problem
from maintenance_flags.snapshot import Snapshot, load_snapshot
from maintenance_flags.state import state_for_site_id
from maintenance_flags.status import status_document, status_lines
from maintenance_flags.switch_options import redirect_target, refresh_seconds
from maintenance_flags.switches import KEEP, _Keep, end_open_windows, schedule_window, write_switch
from maintenance_flags.times import end_after, parse_when

if TYPE_CHECKING:
    # Imported where used: without django.contrib.sites installed, importing it raises, and
    # handle() says what to do instead (system check E002).
    from django.contrib.sites.models import Site

ACTIONS = ["on", "off", "status", "schedule", "bypass", "readonly", "history"]
#: ``history --limit`` above this shows every event (larger LIMITs overflow the databases' integers).
EVERY_EVENT = 2**63 - 1
T = TypeVar("T")

#: What ``--for``/``--until``, ``schedule`` and ``bypass`` print on stderr/stdout for people, by
#: (readonly, on). Machine-readable lines (status, "already", JSON, history, the URL) stay in English.
TURNED = {
    (False, True): gettext_noop("Turned on for %(site)s (%(label)s)."),
    (False, False): gettext_noop("Turned off for %(site)s (%(label)s)."),
    (True, True): gettext_noop("Turned read-only on for %(site)s (%(label)s)."),
    (True, False): gettext_noop("Turned read-only off for %(site)s (%(label)s)."),
}


class Command(BaseCommand):
    help = gettext_noop(
        "Maintenance mode for sites (default: SITE_ID) or every site (--all): "
        "on|off|status|schedule|bypass|readonly on|off|history."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.description = _(self.help)  # translated when the parser is built, in the active language
        # Options may come before or after the site ids: `on --all`, `on 2 --for 30m`.
        parser.parse_args = parser.parse_intermixed_args  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=ACTIONS)
        # default=[]: without it argparse (before Python 3.13) reports SITE_ID as a required argument.
        parser.add_argument("args", nargs="*", default=[], metavar="SITE_ID", help=_("Site ids (default: SITE_ID)."))
        parser.add_argument("--all", action="store_true", dest="all_sites", help=_("Every site (the global switch)."))
        parser.add_argument("--for", dest="duration", help=_("on/readonly: planned end after 90s, 30m, 2h, 1d."))
        parser.add_argument("--until", help=_("on/readonly: planned end, ISO-8601 (naive: TIME_ZONE)."))
        parser.add_argument("--message", help=_("on/readonly/schedule: the message shown to visitors."))
        parser.add_argument("--redirect", metavar="URL", help=_('on: send blocked browsers there ("" removes it).'))
        parser.add_argument(
            "--refresh", metavar="SECONDS", help=_("on: the page reloads itself after 1 to 86400 s (0 removes it).")
        )
        parser.add_argument("--reason", default="", help=_("Recorded in the audit trail."))
        parser.add_argument("--start", help=_("schedule: when the window opens (ISO-8601)."))
        parser.add_argument("--end", help=_("schedule: when it closes (ISO-8601; omit for open-ended)."))
        parser.add_argument("--json", action="store_true", help=_("status: machine-readable output."))
        parser.add_argument("--check", action="store_true", help=_("status: exit 1 if any site is down or read-only."))
        parser.add_argument(
            "--minutes",
            type=int,
            default=bypass.DEFAULT_MINUTES,
            help=_("bypass: link lifetime in minutes (default %(default)s, at most 30 days)."),
        )
        parser.add_argument("--label", default="", help=_("bypass: a label, to revoke by label later."))
        parser.add_argument("--revoke-all", action="store_true", help=_("bypass: revoke every live token."))
        parser.add_argument("--revoke", metavar="LABEL", help=_("bypass: revoke the tokens with this label."))
        parser.add_argument("--scheme", choices=["https", "http"], default="https", help=_("bypass: URL scheme."))
        parser.add_argument(
            "--host",
            help=_(
                "bypass: the link's host[:port], e.g. a staging host or 127.0.0.1:8000 (default: the Site's "
                "domain; with --all, that of SITE_ID's Site, else of the first Site)."
            ),
        )
        parser.add_argument("--limit", type=int, default=50, help=_("history: how many events."))

    def handle(self, *args: Any, **options: Any) -> None:
        if not apps.is_installed("django.contrib.sites"):
            raise CommandError(
                _("django.contrib.sites is not in INSTALLED_APPS: add it (system check maintenance_flags.E002).")
            )
        self.options = options
        action: str = options["action"]
        raw_ids: list[str] = [str(arg) for arg in args]
        ids_given = raw_ids[1:] if action == "readonly" else raw_ids
        if options["all_sites"] and ids_given:
            raise CommandError(_("--all is the global switch: it cannot be combined with site ids."))
        if options["all_sites"] and action == "history":  # bypass --all: a token for every site
            raise CommandError(_("%(action)s takes site ids, not --all.") % {"action": action})
        if action == "readonly" and (not raw_ids or raw_ids[0] not in ("on", "off")):
            raise CommandError(_("Usage: setmaintenance readonly on|off [SITE_ID ...] [--all]"))
        if action != "on" and (options["redirect"] is not None or options["refresh"] is not None):
            given = f"readonly {raw_ids[0]}" if action == "readonly" else action
            raise CommandError(_("--redirect and --refresh go with `on` only, not `%(action)s`.") % {"action": given})
        try:
            if action == "readonly":
                self._switch(raw_ids[1:], raw_ids[0] == "on", readonly=True)
            elif action in ("on", "off"):
                self._switch(raw_ids, action == "on", readonly=False)
            else:
                getattr(self, f"_{action}")(raw_ids)
        except DatabaseError as exc:
            raise CommandError(database_problem(exc)) from exc

    # --- helpers -------------------------------------------------------------------------------

    def _sites(self, raw_ids: list[str], default_all: bool, reading: bool = False) -> list[Site]:
        """The Sites named (every id checked before anything changes), or the default.

        ``reading``: for an action that changes nothing, whose errors must not say "nothing was changed".
        """
        from django.contrib.sites.models import Site

        if not raw_ids:
            if default_all or self.options["all_sites"]:
                return list(Site.objects.order_by("pk"))
            if conf.SITE_ID is None:
                raise CommandError(_("SITE_ID is not set: name the site ids, or use --all."))
            raw_ids = [str(conf.SITE_ID)]
        ids = []
        for raw in raw_ids:
            try:
                ids.append(int(raw))
            except ValueError:
                raise CommandError(_("Site ids must be integers, not %(value)r.") % {"value": raw}) from None
        # An id too large for the column names no Site (and must not reach the database).
        low, high = connections[router.db_for_read(Site)].ops.integer_field_range(Site._meta.pk.get_internal_type())
        found = Site.objects.in_bulk([i for i in ids if low <= i <= high])
        missing = ", ".join(str(i) for i in ids if i not in found)
        if missing and reading:
            raise CommandError(_("No Site with id %(ids)s.") % {"ids": missing})
        if missing:
            raise CommandError(_("No Site with id %(ids)s: nothing was changed.") % {"ids": missing})
        return [found[i] for i in dict.fromkeys(ids)]

    def _parsed(self, name: str, parse: Callable[[str], T]) -> T | None:
        """The option ``--name`` parsed, or None if not given; a CommandError saying what is wrong."""
        value = self.options[name]
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise CommandError(_("--%(option)s: %(error)s.") % {"option": name, "error": exc}) from None

    def _time(self, name: str) -> datetime | None:
        return self._parsed(name, parse_when)

    def _planned_end(self) -> datetime | None:
        duration, until = self.options["duration"], self._time("until")
        if duration and until:
            raise CommandError(_("Use --for or --until, not both."))
        if duration:
            try:
                return end_after(duration, timezone.now())
            except ValueError as exc:
                raise CommandError(_("--%(option)s: %(error)s.") % {"option": "for", "error": exc}) from None
        if until is not None and until <= timezone.now():
            raise CommandError(_("--until %(time)s is in the past.") % {"time": until.isoformat()})
        return until

    # --- actions -------------------------------------------------------------------------------

    def _switch(self, raw_ids: list[str], on: bool, readonly: bool) -> None:
        sites = self._sites(raw_ids, default_all=False)
        ends_at = self._planned_end() if on else None
        planned: datetime | _Keep | None = ends_at if ends_at is not None else KEEP
        if not on and (self.options["duration"] or self.options["until"]):
            raise CommandError(_("--for/--until go with `on`."))
        message = self.options["message"]
        # `on` only (handle() refuses them otherwise); "" and 0 remove them.
        redirect, refresh = self._parsed("redirect", redirect_target), self._parsed("refresh", refresh_seconds)
        word = ("read-only " if readonly else "") + ("on" if on else "off")
        targets: list[tuple[str, str, str, int | None]] = []
        if self.options["all_sites"]:
            name = readonly_switch_name(None) if readonly else ALL_SITES_SWITCH
            targets.append((name, "all", "every site", None))
        else:
            for site in sites:
                name = readonly_switch_name(site.pk) if readonly else site_switch_name(site.pk)
                targets.append((name, str(site.pk), site.domain, site.pk))
        actor = Acting("command", reason=self.options["reason"])
        with acting(actor.source, reason=actor.reason):
            for name, ident, label, site_id in targets:
                # A switch already on gets the new planned end and message, recorded in the history.
                written = write_switch(
                    name, on, message=message, ends_at=planned, redirect_url=redirect, refresh=refresh, record_as=actor
                )
                if not on and not readonly:
                    end_open_windows(site_id)
                if written.changed:
                    shown = _("every site") if site_id is None else label
                    self.stderr.write(_(TURNED[readonly, on]) % {"site": ident, "label": shown})
                elif written.updated:
                    self.stdout.write(f"{ident} {label} already {word}; {', '.join(written.updated)}")
                else:
                    self.stdout.write(f"{ident} {label} already {word}")
        self._print_status(sites)

    def _status(self, raw_ids: list[str]) -> None:
        sites = self._sites(raw_ids, default_all=True, reading=True)
        snapshot = load_snapshot()
        if self.options["json"]:
            self.stdout.write(json.dumps(status_document(snapshot, sites), indent=2))
        else:
            self._print_status(sites, snapshot)
        if self.options["check"]:
            down = [s for s in sites if (st := state_for_site_id(snapshot, s.pk, s)).active or st.readonly]
            if down:
                text = ngettext(
                    "%(count)d site(s) in maintenance or read-only.",
                    "%(count)d site(s) in maintenance or read-only.",
                    len(down),
                )
                raise CommandError(text % {"count": len(down)}, returncode=1)

    def _print_status(self, sites: list[Site], snapshot: Snapshot | None = None) -> None:
        for line in status_lines(snapshot or load_snapshot(), sites):
            self.stdout.write(line)

    def _schedule(self, raw_ids: list[str]) -> None:
        start, end = self._time("start"), self._time("end")
        if start is None:
            raise CommandError(_("schedule needs --start (and usually --end)."))
        if end is not None and end <= start:
            raise CommandError(_("--end must be after --start."))
        targets = [None] if self.options["all_sites"] else [s.pk for s in self._sites(raw_ids, default_all=False)]
        for site_id in targets:
            window = schedule_window(site_id, start, end, self.options["message"] or "")
            values = {
                "id": window.pk,
                "site": site_id,
                "start": start.isoformat(),
                "end": end.isoformat() if end else _("no planned end"),
            }
            if site_id is None:
                text = _("Scheduled window #%(id)s for every site: %(start)s to %(end)s")
            else:
                text = _("Scheduled window #%(id)s for site %(site)s: %(start)s to %(end)s")
            self.stdout.write(text % values)

    def _bypass(self, raw_ids: list[str]) -> None:
        if self.options["revoke_all"] or self.options["revoke"]:
            count = bypass.revoke(None if self.options["revoke_all"] else self.options["revoke"])
            text = ngettext("Revoked %(count)d bypass token(s).", "Revoked %(count)d bypass token(s).", count)
            self.stdout.write(text % {"count": count})
            return
        minutes = self.options["minutes"]
        if not 1 <= minutes <= bypass.MAX_MINUTES:
            text = _("--minutes must be a whole number from 1 to %(max)d (30 days).")
            raise CommandError(text % {"max": bypass.MAX_MINUTES})
        host = self.options["host"]
        if host is not None and not split_domain_port(host)[0]:
            text = _("--host must be a host name or address, with an optional port (no scheme or path): %(host)r.")
            raise CommandError(text % {"host": host})
        site: Site | None = None
        if not self.options["all_sites"]:
            if len(raw_ids) > 1:
                raise CommandError(_("bypass takes one site id, or --all for a token that opens every site."))
            if not raw_ids and conf.SITE_ID is None:
                raise CommandError(
                    _("SITE_ID is not set: name a site id, or use --all for a token that opens every site.")
                )
            (site,) = self._sites(raw_ids, default_all=False)
        if host is None:
            host = self._link_domain(site)
        row, token = bypass.issue(minutes, self.options["label"], site_id=site.pk if site else None)
        self.stdout.write(f"{self.options['scheme']}://{host}/?{bypass.PARAM}={token}")
        text = _("Bypass token #%(id)s valid until %(time)s.")
        self.stderr.write(text % {"id": row.pk, "time": row.expires_at.isoformat()})

    def _link_domain(self, site: Site | None) -> str:
        """The token's Site's domain; for every site, SITE_ID's Site's, else the first Site's."""
        from django.contrib.sites.models import Site

        if site is None and conf.SITE_ID is not None:
            site = Site.objects.filter(pk=conf.SITE_ID).first()
        site = site or Site.objects.order_by("pk").first()
        if site is None:
            raise CommandError(_("There is no Site to build the link from: give --host."))
        return site.domain

    def _history(self, raw_ids: list[str]) -> None:
        from maintenance_flags.models import MaintenanceEvent

        limit = self.options["limit"]
        if limit <= 0:
            raise CommandError(_("--limit must be a positive number."))
        events = MaintenanceEvent.objects.select_related("site", "user")
        if raw_ids:
            events = events.filter(site__in=self._sites(raw_ids, default_all=False, reading=True))
        for event in events[: min(limit, EVERY_EVENT)]:
            where = f"{event.site_id} {event.site.domain}" if event.site else "all -"
            state = ("read-only " if event.readonly else "") + ("on" if event.active else "off")
            who = f"{event.source}, {event.user.get_username()}" if event.user else event.source
            reason = f" — {event.reason}" if event.reason else ""
            self.stdout.write(f"{event.created_at.isoformat()} {where} {state} ({who}){reason}")
