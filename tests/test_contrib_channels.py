"""The Channels guard: websocket handshakes and open websockets follow maintenance as pages do.

The clients are Channels' own test clients: ``WebsocketCommunicator`` for websockets,
``HttpCommunicator`` (and ``ApplicationCommunicator`` for lifespan) for the scopes that pass
through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import channels.db
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.auth import AuthMiddlewareStack, UserLazyObject
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from waffle.models import Switch

from maintenance_flags import bypass
from maintenance_flags.contrib import channels as guard
from maintenance_flags.contrib.channels import TICKER_NAME, MaintenanceGuard, Message, Receive, Scope, Send
from maintenance_flags.decisions import adecide
from maintenance_flags.models import IgnoredURL, MaintenanceWindow
from maintenance_flags.names import readonly_switch_name, site_switch_name
from maintenance_flags.store import store
from maintenance_flags.switches import set_switch
from tests.fleet_support import ALIAS, redis_cache, redis_keys
from tests.utils import turn

pytestmark = pytest.mark.django_db

TTL = 0.2
#: what the consumer saw: "connect", or "disconnect <code>"
seen: list[str] = []


@pytest.fixture(autouse=True)
def _consumers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A consumer starts with no events seen. Channels closes "old" database connections around
    each consumer step: here that would be the test's own connection, and its transaction. The
    communicators turn that off only while they send or receive, and a consumer also runs while
    the test waits otherwise (the ticker tells it of a close); many communicators waiting at once
    would also restore each other's patch in the wrong order. So it is off for the whole test."""
    monkeypatch.setattr(channels.db, "close_old_connections", lambda: None)
    seen.clear()
    yield
    assert not guard.tickers  # every ticker stopped with its last connection


class Echo(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Accepts, echoes, and still talks after a disconnect (the guard must swallow that)."""

    async def connect(self) -> None:
        seen.append("connect")
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data)

    async def disconnect(self, code: int) -> None:
        seen.append(f"disconnect {code}")
        await self.send(text_data="bye")


def socket(path: str = "/ws/", headers: dict[str, str] | None = None, **scope: Any) -> Any:
    """A ``WebsocketCommunicator`` to the guarded consumer. ``scope`` is added to the
    connection's scope (the application starts with the first message, so it sees it), as the
    server adds the client's address and ``AuthMiddlewareStack`` the user."""
    pairs = [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    client = WebsocketCommunicator(MaintenanceGuard(Echo.as_asgi()), path, headers=pairs)
    client.scope.update(scope)
    return client


async def echo(client: Any, text: str) -> str:
    await client.send_to(text_data=text)
    return str(await client.receive_from())


def handshake(path: str = "/ws/", headers: dict[str, str] | None = None, **scope: Any) -> tuple[bool, Any]:
    """Open a websocket and close it again: what ``connect()`` reports, (True, the subprotocol)
    if accepted, (False, the close code) if closed before it was accepted."""

    async def run() -> tuple[bool, Any]:
        client = socket(path, headers, **scope)
        outcome: tuple[bool, Any] = await client.connect()
        if outcome[0]:
            await client.disconnect()
        else:
            await client.wait()  # refused: the guard has stopped by itself
        return outcome

    return async_to_sync(run)()


ACCEPTED = (True, None)
REFUSED = (False, 1013)


def staff(django_user_model: type[User], **fields: Any) -> Any:
    """A staff user as ``AuthMiddlewareStack`` puts it in the scope (a resolved lazy object)."""
    user = UserLazyObject()
    user._wrapped = django_user_model.objects.create_user("staff", is_staff=True, **fields)
    return user


# --- handshakes --------------------------------------------------------------------------------


def test_accepted_when_off() -> None:
    assert handshake() == ACCEPTED
    assert seen == ["connect", "disconnect 1000"]


def test_refused_during_maintenance_before_the_application_sees_it() -> None:
    turn(True)
    assert handshake() == REFUSED
    assert seen == []


@pytest.mark.parametrize("path", ["/ws/", "/healthz"])
def test_refused_when_read_only(path: str) -> None:
    """A websocket can write: read-only refuses it, even on a health-check path (exempt for reads)."""
    set_switch(readonly_switch_name(1), True)
    assert handshake(path) == REFUSED


def test_staff_let_through(django_user_model: type[User]) -> None:
    turn(True)
    assert handshake(user=staff(django_user_model)) == ACCEPTED


@pytest.mark.parametrize(("is_staff", "is_active"), [(False, True), (True, False)])
def test_non_staff_refused(django_user_model: type[User], is_staff: bool, is_active: bool) -> None:
    turn(True)
    user = django_user_model.objects.create_user("visitor", is_staff=is_staff, is_active=is_active)
    assert handshake(user=user) == REFUSED


@pytest.mark.parametrize(("is_staff", "outcome"), [(True, ACCEPTED), (False, REFUSED)])
def test_the_session_user_inside_auth_middleware_stack(
    django_user_model: type[User], is_staff: bool, outcome: tuple[bool, Any]
) -> None:
    """As the module documents it: ``AuthMiddlewareStack`` finds the user of the session
    cookie, and the guard inside it lets staff through."""
    turn(True)
    browser = Client()
    browser.force_login(django_user_model.objects.create_user("member", is_staff=is_staff))
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"

    async def run() -> tuple[bool, Any]:
        application = AuthMiddlewareStack(MaintenanceGuard(Echo.as_asgi()))
        client = WebsocketCommunicator(application, "/ws/", headers=[(b"cookie", cookie.encode())])
        result: tuple[bool, Any] = await client.connect()
        await (client.disconnect() if result[0] else client.wait())
        return result

    assert async_to_sync(run)() == outcome


@override_settings(MAINTENANCE_BLOCK_STAFF=True)
def test_block_staff_refuses_staff(django_user_model: type[User]) -> None:
    turn(True)
    assert handshake(user=staff(django_user_model)) == REFUSED


@override_settings(MAINTENANCE_ALLOWED_IPS=["10.0.0.0/8"], MAINTENANCE_TRUSTED_PROXIES=["192.0.2.1"])
@pytest.mark.parametrize(
    ("client", "forwarded", "outcome"),
    [
        ("10.1.2.3", None, ACCEPTED),
        ("192.0.2.1", "10.1.2.3", ACCEPTED),  # through the trusted proxy
        ("203.0.113.9", "10.1.2.3", REFUSED),  # spoofed: the client is no proxy of ours
        ("203.0.113.9", None, REFUSED),
    ],
)
def test_allowed_ips(client: str, forwarded: str | None, outcome: tuple[bool, Any]) -> None:
    turn(True)
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    assert handshake(headers=headers, client=[client, 50000]) == outcome


def test_bypass_cookie() -> None:
    turn(True)
    _, token = bypass.issue(site_id=1)
    assert handshake(headers={"cookie": f"{bypass.COOKIE}={token}"}) == ACCEPTED
    assert handshake(headers={"cookie": f"{bypass.COOKIE}=forged"}) == REFUSED


def test_ignored_path() -> None:
    turn(True)
    IgnoredURL.objects.create(pattern="^ws/public/")
    assert handshake("/ws/public/feed/") == ACCEPTED
    assert handshake("/ws/private/") == REFUSED


class Recorder:
    """An inner application that records what it is called with and answers as HTTP or
    lifespan does."""

    def __init__(self) -> None:
        self.calls: list[tuple[Scope, Receive, Send]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls.append((scope, receive, send))
        message = await receive()
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"inner"})
        else:
            await send({"type": f"{message['type']}.complete"})


def test_http_passes_through_untouched() -> None:
    turn(True)
    inner = Recorder()

    async def run() -> tuple[Any, dict[str, Any]]:
        client = HttpCommunicator(MaintenanceGuard(inner), "GET", "/ws/")
        return client, await client.get_response()

    client, response = async_to_sync(run)()
    assert (response["status"], response["body"]) == (200, b"inner")
    assert inner.calls == [(client.scope, client.input_queue.get, client.output_queue.put)]
    assert inner.calls[0][0] is client.scope


def test_lifespan_passes_through_untouched() -> None:
    turn(True)
    inner = Recorder()

    async def run() -> tuple[Any, Message]:
        client = ApplicationCommunicator(MaintenanceGuard(inner), {"type": "lifespan"})
        await client.send_input({"type": "lifespan.startup"})
        return client, await client.receive_output()

    client, reply = async_to_sync(run)()
    assert reply == {"type": "lifespan.startup.complete"}
    assert inner.calls == [(client.scope, client.input_queue.get, client.output_queue.put)]
    assert inner.calls[0][0] is client.scope


# --- open websockets ---------------------------------------------------------------------------


async def maintenance_starts_elsewhere() -> float:
    """Turn site 1's switch on as another process would (no signal: only the TTL tells this
    one); the moment it did."""
    await sync_to_async(Switch.objects.filter(name=site_switch_name(1)).update)(active=True)
    return time.monotonic()


async def closed_within(client: Any, started: float) -> float:
    """The close the client gets (1013, and nothing after it); how long after ``started``."""
    assert await client.receive_output(timeout=TTL + 1.5) == {"type": "websocket.close", "code": 1013}
    elapsed = time.monotonic() - started
    await client.wait()  # the application stopped by itself
    # It has stopped, so what is queued is all it sent: the consumer's "bye" was swallowed.
    assert await client.receive_nothing(timeout=0)
    return elapsed


@override_settings(MAINTENANCE_STATE_TTL=TTL)
def test_open_socket_closed_when_maintenance_starts() -> None:
    turn(False)

    async def run() -> float:
        client = socket()
        assert (await client.connect())[0]
        assert await echo(client, "hello") == "hello"
        return await closed_within(client, await maintenance_starts_elsewhere())

    assert async_to_sync(run)() <= TTL + 1
    assert seen == ["connect", "disconnect 1013"]


@override_settings(MAINTENANCE_STATE_TTL=5)
def test_open_sockets_cost_no_query_while_the_state_is_memoised(django_assert_num_queries: Any) -> None:
    turn(False)
    store.get()

    async def run() -> None:
        client = socket()
        assert (await client.connect())[0]
        await asyncio.sleep(guard.TICK * 2.2)  # the ticker looks twice
        assert await echo(client, "hello") == "hello"
        await client.disconnect()

    with django_assert_num_queries(0):
        async_to_sync(run)()


@override_settings(MAINTENANCE_STATE_TTL=TTL)
def test_staff_socket_stays_open(django_user_model: type[User]) -> None:
    turn(False)
    user = staff(django_user_model)

    async def run() -> None:
        visitor, member = socket(), socket(user=user)
        assert (await visitor.connect())[0]
        assert (await member.connect())[0]
        await closed_within(visitor, await maintenance_starts_elsewhere())
        await asyncio.sleep(TTL + guard.TICK)
        assert await member.receive_nothing(timeout=0)  # no close came
        assert await echo(member, "still here") == "still here"
        await member.disconnect()

    async_to_sync(run)()
    assert seen == ["connect", "connect", "disconnect 1013", "disconnect 1000"]


@override_settings(MAINTENANCE_STATE_TTL=TTL)
def test_one_ticker_for_many_sockets() -> None:
    turn(False)

    async def run() -> None:
        clients = [socket() for _ in range(200)]
        assert all(accepted for accepted, _ in await asyncio.gather(*(c.connect(timeout=5) for c in clients)))
        assert [t.get_name() for t in asyncio.all_tasks()].count(TICKER_NAME) == 1
        await maintenance_starts_elsewhere()
        closes = await asyncio.gather(*(c.receive_output(timeout=TTL + 1.5) for c in clients))
        assert all(close == {"type": "websocket.close", "code": 1013} for close in closes)
        await asyncio.gather(*(c.wait() for c in clients))
        await asyncio.sleep(guard.TICK * 1.5)  # the ticker's next look: no connection left
        assert TICKER_NAME not in [t.get_name() for t in asyncio.all_tasks()]

    async_to_sync(run)()
    assert seen.count("disconnect 1013") == 200


def test_a_window_opening_closes_open_sockets_while_the_shared_state_is_unchanged(settings: Any) -> None:
    """With the fleet tier an unchanged state keeps its snapshot object; the ticker judges open
    sockets again once per TTL all the same, since the clock alone opens a window."""
    turn(False)
    settings.MAINTENANCE_STATE_TTL = TTL  # the fixture only: mixed with override_settings, it leaks
    with redis_keys() as keys:
        settings.CACHES = {**settings.CACHES, ALIAS: redis_cache(keys.prefix)}
        settings.MAINTENANCE_STATE_CACHE = ALIAS
        MaintenanceWindow.objects.create(site_id=1, starts_at=timezone.now() + timedelta(seconds=1.5))

        async def run() -> float:
            client = socket()
            assert (await client.connect())[0]
            started = time.monotonic()
            assert await client.receive_output(timeout=5) == {"type": "websocket.close", "code": 1013}
            await client.wait()
            return time.monotonic() - started

        assert async_to_sync(run)() <= 1.5 + TTL + 1
    assert seen == ["connect", "disconnect 1013"]


# --- errors ------------------------------------------------------------------------------------


def fail_once(real: Callable[..., Any]) -> Callable[..., Any]:
    """``real``, except that its first call raises."""
    calls: list[None] = []

    def once(*args: Any) -> Any:
        calls.append(None)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(*args)

    return once


@override_settings(MAINTENANCE_STATE_TTL=TTL)
@pytest.mark.parametrize(
    ("failing", "logged"),
    [
        ("judgement", "Could not check 1 websocket(s) against maintenance"),
        ("state", "Could not check the maintenance state for websockets"),
    ],
)
def test_a_failure_is_logged_and_the_ticker_goes_on(
    failing: str, logged: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection's judgement, or the look at the state, fails once: logged, and the next
    tick judges the connection with the next snapshot."""
    turn(False)

    async def run() -> None:
        client = socket()
        assert (await client.connect())[0]
        if failing == "judgement":
            monkeypatch.setattr(guard, "adecide", fail_once(adecide))
        else:
            monkeypatch.setattr(store, "current", fail_once(store.current))
        await closed_within(client, await maintenance_starts_elsewhere())

    async_to_sync(run)()
    assert logged in caplog.text
    assert seen == ["connect", "disconnect 1013"]
