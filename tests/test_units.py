"""Direct tests of the helpers' corner cases (the request-level tests cover the main paths)."""

from __future__ import annotations

import ipaddress
import logging
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser
from django.contrib.sites.models import Site
from django.db import DatabaseError
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.utils.functional import SimpleLazyObject
from waffle.models import Switch

from maintenance_flags import exemptions, receivers, schedule
from maintenance_flags.middleware import MaintenanceModeMiddleware
from maintenance_flags.models import BypassToken, IgnoredURL, SwitchDetail
from maintenance_flags.snapshot import UNKNOWN, Snapshot, load_snapshot
from maintenance_flags.store import store
from maintenance_flags.switches import KEEP
from maintenance_flags.users import aload_user, load_user
from tests.conftest import turn

pytestmark = pytest.mark.django_db


def test_describe_pattern_errors() -> None:
    assert exemptions._describe(ValueError(b"bad \\1")) == "bad \\1"
    assert exemptions._describe(ValueError("text")) == "text"
    assert exemptions._describe(ValueError()) == ""


@override_settings(MAINTENANCE_ADMIN_IGNORED_URLS=["(bad", "^ok/"])
def test_bad_settings_pattern_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    turn(True)
    assert Client().get("/ok/").status_code == 404
    assert Client().get("/").status_code == 503
    assert "does not compile" in caplog.text


def test_networks() -> None:
    assert exemptions.parse_network("::ffff:10.0.0.0/104") == ipaddress.ip_network("10.0.0.0/8")
    assert exemptions.parse_network("2001:db8::1/32") == ipaddress.ip_network("2001:db8::/32")
    assert exemptions.networks(["10.0.0.1", "nonsense", "::1"]) == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )


def test_model_strings() -> None:
    assert str(SwitchDetail(switch_name="maintenance_mode_site_1")) == "maintenance_mode_site_1"
    assert str(BypassToken(label="qa")) == "qa"
    assert str(BypassToken(pk=3)) == "#3"
    assert repr(KEEP) == "KEEP"


# --- receivers --------------------------------------------------------------------------------


class NoWaffle:
    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if app_label == "waffle" else None


def test_migrate_respects_routers() -> None:
    Switch.objects.filter(name="maintenance_mode_all_sites").delete()
    with override_settings(DATABASE_ROUTERS=[NoWaffle()]):
        receivers.create_switches_after_migrate(using="default")
    assert not Switch.objects.filter(name="maintenance_mode_all_sites").exists()


def test_migrate_survives_missing_tables(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise DatabaseError("no such table")

    monkeypatch.setattr(receivers, "ensure_switches", broken)
    receivers.create_switches_after_migrate(using="default")
    assert "Could not create the maintenance switches" in caplog.text


def test_raw_site_saves_create_no_switch() -> None:
    site = Site(pk=77, domain="fixture.example", name="Fixture")
    receivers.create_site_switch(instance=site, created=True, raw=True)
    assert not Switch.objects.filter(name="maintenance_mode_site_77").exists()


# --- state ---------------------------------------------------------------------------------------


@override_settings(SITE_ID=None, ALLOWED_HOSTS=["example.com", "other.example", "unknown.example"])
@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", 503),
        ("EXAMPLE.com", 503),
        ("example.com:8000", 503),
        ("other.example", 200),
        ("unknown.example", 200),  # no Site for this host: only the global switch applies
        ("evil.example", 400),  # DisallowedHost: Django's own 400, never a 500 from us
    ],
)
def test_site_from_host(host: str, expected: int) -> None:
    Site.objects.create(domain="other.example", name="Other")
    turn(True)
    assert Client().get("/async/", headers={"Host": host}).status_code == expected


@override_settings(SITE_ID=None, ALLOWED_HOSTS=["unknown.example"])
def test_unknown_host_gets_the_global_switch() -> None:
    turn(True, site_id=None)
    assert Client().get("/async/", headers={"Host": "unknown.example"}).status_code == 503


def test_site_for_without_allowed_host() -> None:
    request = RequestFactory().get("/", headers={"Host": "evil.example"})
    with override_settings(SITE_ID=None, ALLOWED_HOSTS=["example.com"]):
        assert load_snapshot().site_for(request) is None


def test_bad_pattern_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    IgnoredURL.objects.bulk_create([IgnoredURL(pattern="(bad-once")])
    with caplog.at_level(logging.WARNING, logger="maintenance_flags"):
        load_snapshot()
        load_snapshot()
    assert len([r for r in caplog.records if "(bad-once" in r.getMessage()]) == 1


def test_other_threads_use_the_last_snapshot_while_one_refreshes() -> None:
    first = store.get()
    store.invalidate()
    store._lock.acquire()  # another thread is refreshing
    try:
        result: list[Snapshot] = []
        thread = threading.Thread(target=lambda: result.append(store.get()))
        thread.start()
        thread.join(5)
        assert result == [first]
    finally:
        store._lock.release()


def test_no_snapshot_yet_and_lock_busy_returns_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    class Busy:
        def acquire(self, blocking: bool = True) -> bool:
            return False

    store.reset()
    monkeypatch.setattr(store, "_lock", Busy())
    try:
        assert store.get() is UNKNOWN
    finally:
        monkeypatch.undo()


# --- schedule ------------------------------------------------------------------------------------


def test_transition_failures_are_logged(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from maintenance_flags.models import MaintenanceWindow

    MaintenanceWindow.objects.create(starts_at=timezone.now() - timedelta(minutes=1))

    def broken(*args: Any) -> None:
        raise DatabaseError("read-only replica")

    monkeypatch.setattr(schedule, "_record_windows", broken)
    schedule.record_transitions(load_snapshot())
    assert "Could not record scheduled maintenance transitions" in caplog.text


def test_planned_end_claimed_elsewhere_is_not_repeated() -> None:
    from django.utils import timezone

    turn(True)
    schedule._end_planned(["maintenance_mode_site_1"], timezone.now())  # no planned end to claim
    assert Switch.objects.get(name="maintenance_mode_site_1").active


# --- middleware: users that cannot be loaded -------------------------------------------------------


def _broken_user() -> Any:
    raise DatabaseError("database is down")


def test_user_that_cannot_be_loaded_is_anonymous(caplog: pytest.LogCaptureFixture) -> None:
    request = RequestFactory().get("/")
    request.user = SimpleLazyObject(_broken_user)  # type: ignore[assignment]
    assert load_user(request) is None
    assert "treating the request as anonymous" in caplog.text
    turn(True)
    response = MaintenanceModeMiddleware(lambda r: HttpResponse("ok"))(request)
    assert response.status_code == 503


def test_async_user_that_cannot_be_loaded_is_anonymous() -> None:
    request = RequestFactory().get("/")

    async def auser() -> Any:
        raise DatabaseError("database is down")

    request.auser = auser  # type: ignore[attr-defined]
    assert async_to_sync(aload_user)(request) is None
    assert async_to_sync(aload_user)(RequestFactory().get("/")) is None  # no AuthenticationMiddleware


# --- switches: a failure after the commit is reported, not raised -----------------------------------


def _atomic_failing_on_exit(error: Exception) -> Any:
    """set_switch's own (outermost, argument-less) atomic block fails as it exits."""
    from contextlib import contextmanager

    from django.db import transaction

    real = transaction.atomic

    @contextmanager
    def failing() -> Any:
        with real():
            yield
        raise error

    def atomic(*args: Any, **kwargs: Any) -> Any:
        return real(*args, **kwargs) if args or kwargs else failing()

    return atomic


def test_post_commit_failure_is_logged(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from maintenance_flags import switches

    monkeypatch.setattr(switches.transaction, "atomic", _atomic_failing_on_exit(ConnectionError("redis down")))
    switch, changed = switches.set_switch("maintenance_mode_site_1", True)
    assert changed
    assert switch.active
    assert "post-commit step failed" in caplog.text


@pytest.mark.parametrize("error", [DatabaseError("commit failed"), RuntimeError("before commit")])
def test_failures_before_or_at_commit_are_raised(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    from maintenance_flags import switches

    if isinstance(error, DatabaseError):
        monkeypatch.setattr(switches.transaction, "atomic", _atomic_failing_on_exit(error))
    else:

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise error

        monkeypatch.setattr(switches, "switch_model", broken)
    with pytest.raises(type(error)):
        switches.set_switch("maintenance_mode_site_1", True)


def test_no_session_means_anonymous_without_loading_the_user(caplog: pytest.LogCaptureFixture) -> None:
    from django.contrib.auth.middleware import AuthenticationMiddleware
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils.functional import empty

    async def broken_auser() -> None:
        _broken_user()

    request = RequestFactory().get("/")
    request.session = SessionStore()  # no cookie: no key
    AuthenticationMiddleware(lambda r: HttpResponse()).process_request(request)
    request.auser = broken_auser  # type: ignore[attr-defined]
    assert load_user(request) is None
    assert async_to_sync(aload_user)(request) is None
    assert request.user._wrapped is empty  # type: ignore[attr-defined]  # not loaded
    assert "treating the request as anonymous" not in caplog.text
    request.session = SessionStore(session_key="x" * 32)  # a session: the user must be loaded
    assert async_to_sync(aload_user)(request) is None  # auser() raised: anonymous, logged
    assert "treating the request as anonymous" in caplog.text


def test_anonymous_503_does_not_touch_the_session() -> None:
    turn(True)
    response = Client().get("/")
    assert response.status_code == 503
    assert "Cookie" not in response.get("Vary", "")


def test_privileged_by_ip_on_an_ignored_path() -> None:
    """The banner's wording: an allowed IP on an ignored URL is told it is let through."""
    from maintenance_flags.decisions import LET_THROUGH_IGNORED, privileged, verdict
    from maintenance_flags.state import SiteState

    state = SiteState(True, "site switch", site_id=1)
    on_admin = verdict(state, blocked=False, let_through=LET_THROUGH_IGNORED)
    request = RequestFactory().get("/admin/", REMOTE_ADDR="10.9.8.7")
    with override_settings(MAINTENANCE_ALLOWED_IPS=["10.9.8.0/24"]):
        assert privileged(request, on_admin)
    request.user = AnonymousUser()
    assert not privileged(request, on_admin)
