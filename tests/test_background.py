"""maintenance_flags.background: the state of SITE_ID's site for work that has no request, and
``skip_during_maintenance`` for management commands (cron jobs)."""

from __future__ import annotations

import logging
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import BaseCommand
from pytest_django import DjangoAssertNumQueries

from maintenance_flags import background
from maintenance_flags.names import readonly_switch_name
from maintenance_flags.switches import set_switch
from tests.utils import turn

pytestmark = pytest.mark.django_db


class Command(BaseCommand):
    """A nightly job: it writes, so it must not run during maintenance."""

    runs: list[dict[str, Any]]

    def __init__(self) -> None:
        super().__init__(stdout=StringIO())
        self.runs = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch", type=int, default=10)

    @background.skip_during_maintenance
    def handle(self, *args: Any, **options: Any) -> str:
        self.runs.append(options)
        return "Done."


def run(command: Command, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def read_only(on: bool = True, site_id: int | None = 1) -> None:
    """``setmaintenance readonly on|off`` (the site's switch, or the global one)."""
    set_switch(readonly_switch_name(site_id), on)


# --- the state ----------------------------------------------------------------------------------


def test_site_state_is_the_state_of_site_id(settings: Any) -> None:
    settings.SITE_ID = 2
    turn(True, site_id=1)
    state = background.site_state()
    assert (state.site_id, state.active, background.is_down(state)) == (2, False, False)


def test_in_maintenance_is_down() -> None:
    turn(True)
    state = background.site_state()
    assert (state.site_id, state.active, background.is_down(state)) == (1, True, True)


def test_read_only_is_down() -> None:
    read_only()
    state = background.site_state()
    assert (state.active, state.readonly, background.is_down(state)) == (False, True, True)


def test_the_global_switch_counts() -> None:
    turn(True, site_id=None)
    assert background.is_down(background.site_state())


def test_the_memo_is_used_within_the_ttl(django_assert_num_queries: DjangoAssertNumQueries) -> None:
    turn(True)
    background.site_state()
    turn(False)  # through Django, so the memo is dropped: read again once
    assert not background.is_down(background.site_state())
    with django_assert_num_queries(0):
        assert not background.is_down(background.site_state())


def test_in_a_transaction_the_connection_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing it would end the caller's transaction (here, the test's)."""
    closed: list[bool] = []
    monkeypatch.setattr(background, "close_old_connections", lambda: closed.append(True))
    background.site_state()
    assert closed == []


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_an_old_connection_is_closed_after_a_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """No request ends in a worker, beat or command to close an aged or broken connection: each
    database read (once per TTL) does it; a read from the memo does not."""
    closed: list[bool] = []
    monkeypatch.setattr(background, "close_old_connections", lambda: closed.append(True))
    background.site_state()
    background.site_state()
    assert closed == [True]


# --- describe -----------------------------------------------------------------------------------


def test_describe() -> None:
    turn(True)
    assert background.describe(background.site_state()) == "site 1 is in maintenance"


def test_describe_read_only() -> None:
    read_only()
    assert background.describe(background.site_state()) == "site 1 is read-only"


def test_describe_maintenance_and_read_only_at_once_says_maintenance() -> None:
    turn(True)
    read_only()
    assert background.describe(background.site_state()) == "site 1 is in maintenance"


@pytest.mark.parametrize(
    ("maintenance", "expected"), [(True, "the site is in maintenance"), (False, "the site is read-only")]
)
def test_describe_without_site_id(settings: Any, maintenance: bool, expected: str) -> None:
    settings.SITE_ID = None
    if maintenance:
        turn(True, site_id=None)
    else:
        read_only(site_id=None)
    state = background.site_state()
    assert state.site_id is None
    assert background.is_down(state)
    assert background.describe(state) == expected


# --- skip_during_maintenance --------------------------------------------------------------------


def test_up_the_command_runs() -> None:
    command = Command()
    assert run(command, "--batch=5") == "Done.\n"
    assert [options["batch"] for options in command.runs] == [5]


def test_down_the_command_is_skipped_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    turn(True)
    command = Command()
    with caplog.at_level(logging.INFO, logger="maintenance_flags"):
        out = run(command, "--batch=5")
    assert out == "Skipped: site 1 is in maintenance.\n"
    assert command.runs == []
    assert caplog.messages == ["test_background: Skipped: site 1 is in maintenance."]


def test_read_only_the_command_is_skipped() -> None:
    read_only()
    command = Command()
    assert run(command) == "Skipped: site 1 is read-only.\n"
    assert command.runs == []


def test_the_decorated_handle_keeps_its_name() -> None:
    assert Command.handle.__qualname__ == "Command.handle"
