"""``manage.py setmaintenance on|off|status [SITE_ID ...] [--all]``."""

from __future__ import annotations

from typing import Any

from django.contrib.sites.models import Site
from django.core.management.base import BaseCommand, CommandError, CommandParser

from maintenance_flags.conf import conf
from maintenance_flags.state import (
    ALL_SITES_SWITCH,
    REASON_GLOBAL,
    load_snapshot,
    set_switch,
    site_switch_name,
    state_for_site_id,
)


class Command(BaseCommand):
    help = (
        "Turn maintenance mode on or off for sites (default: SITE_ID) or for every site "
        "(--all), or show the status of every site."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Options may come before or after the site ids: `on --all`, `on 2 --for 30m`.
        parser.parse_args = parser.parse_intermixed_args  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["on", "off", "status"])
        parser.add_argument("site_ids", nargs="*", metavar="SITE_ID", help="Site ids (default: SITE_ID).")
        parser.add_argument(
            "--all", action="store_true", dest="all_sites", help="Use the global switch (every site at once)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action: str = options["action"]
        if options["all_sites"] and options["site_ids"]:
            raise CommandError("--all is the global switch: it cannot be combined with site ids.")
        if options["all_sites"]:
            sites = list(Site.objects.order_by("pk"))
        else:
            sites = self._sites(options["site_ids"], action)
        if action == "status":
            self._status(sites)
            return
        on = action == "on"
        if options["all_sites"]:
            _, changed = set_switch(ALL_SITES_SWITCH, on)
            self._report("all", "every site", action, changed)
        else:
            for site in sites:
                _, changed = set_switch(site_switch_name(site.pk), on)
                self._report(str(site.pk), site.domain, action, changed)
        self._status(sites, with_global=True)

    def _sites(self, raw_ids: list[str], action: str) -> list[Site]:
        """Every id checked before anything changes."""
        if not raw_ids:
            if action == "status":
                return list(Site.objects.order_by("pk"))
            if conf.SITE_ID is None:
                raise CommandError("SITE_ID is not set: name the site ids, or use --all.")
            raw_ids = [str(conf.SITE_ID)]
        ids = []
        for raw in raw_ids:
            try:
                ids.append(int(raw))
            except ValueError:
                raise CommandError(f"Site ids must be integers, not {raw!r}.") from None
        found = Site.objects.in_bulk(ids)
        missing = [str(i) for i in ids if i not in found]
        if missing:
            raise CommandError(f"No Site with id {', '.join(missing)}: nothing was changed.")
        return [found[i] for i in dict.fromkeys(ids)]

    def _report(self, ident: str, label: str, action: str, changed: bool) -> None:
        if changed:
            self.stderr.write(f"Maintenance turned {action} for {ident} ({label}).")
        else:
            self.stdout.write(f"{ident} {label} already {action}")

    def _status(self, sites: list[Site], with_global: bool = True) -> None:
        snapshot = load_snapshot()
        for site in sites:
            state = state_for_site_id(snapshot, site.pk, site)
            self.stdout.write(f"{site.pk} {site.domain} {'on' if state.active else 'off'} ({state.reason})")
        if with_global:
            on = snapshot.switches.get(ALL_SITES_SWITCH, False)
            self.stdout.write(f"all - {'on' if on else 'off'} ({REASON_GLOBAL})")
