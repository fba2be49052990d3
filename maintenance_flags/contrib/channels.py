"""Channels: websockets follow maintenance as HTTP requests do.

Wrap the websocket application, inside ``AuthMiddlewareStack`` (so ``scope["user"]`` is set)::

    "websocket": AuthMiddlewareStack(MaintenanceGuard(URLRouter(websocket_urlpatterns)))

**Handshakes.** The scope becomes the Django request it stands for (``ASGIRequest``: headers,
cookies, client address and path as Django reads them; the user from the scope) and
:func:`~maintenance_flags.decisions.adecide` decides on it, so staff, allowed IPs (through
trusted proxies), the bypass cookie or header and ignored paths let a websocket through exactly
as they let a page through. A websocket can write, so it is judged as a request that writes
(:data:`METHOD`): read-only mode refuses it as maintenance does, and the health-check paths,
exempt for reads only, do not let it through. A refused handshake is closed with 1013 (Try
Again Later) before it is accepted; the wrapped application never sees it. Other scopes (HTTP,
lifespan) pass straight through.

**Open sockets.** One ticker per event loop (no timer per connection) looks at the state every
:data:`TICK` seconds (reading it, in a thread, once it is older than the TTL, where the
middleware would serve the last one), and only when the snapshot changed judges the
open connections again: one that would now be refused is closed with 1013, and the application
receives ``websocket.disconnect`` (code 1013), so a Channels consumer runs ``disconnect()`` and
stops (its messages pass through a queue, fed by one small task, so the guard can add that
one). A socket is thus closed within ``MAINTENANCE_STATE_TTL`` + 1 s of maintenance starting.
The ticker stops with the last connection; an error in it is logged and it goes on.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest

from maintenance_flags.conf import conf
from maintenance_flags.decisions import adecide
from maintenance_flags.snapshot import Snapshot
from maintenance_flags.state import overrides
from maintenance_flags.store import store

logger = logging.getLogger("maintenance_flags")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Application = Callable[[Scope, Receive, Send], Awaitable[None]]

#: seconds between two looks at the state: maintenance is seen within TTL + TICK
TICK = 0.5
#: the close code, "Try Again Later"
TRY_AGAIN_LATER = 1013
#: a websocket is judged as the request to its path with this method: one that may write
METHOD = "POST"
#: connections judged again between two chances for the event loop to run other tasks
BATCH = 100
#: the name of each loop's ticker task
TICKER_NAME = "maintenance_flags.contrib.channels ticker"


async def current_snapshot() -> Snapshot:
    """The snapshot as the async middleware takes it: the memo, or a read in a thread."""
    return store.without_io() or await sync_to_async(store.get)()


async def snapshot_to_judge() -> Snapshot:
    """The snapshot the ticker judges open sockets by: past the TTL it reads it (in a thread)
    rather than judging by the last one until its next look."""
    return store.fresh() or await sync_to_async(store.current)()


def request_for(scope: Scope) -> HttpRequest:
    """The HTTP request a websocket scope stands for (with no body), and the scope's user."""
    request = ASGIRequest({**scope, "type": "http", "method": METHOD}, io.BytesIO())
    if "user" in scope:
        request.user = scope["user"]
    return request


def closing() -> Message:
    return {"type": "websocket.close", "code": TRY_AGAIN_LATER}


class Connection:
    """One websocket let through: the request it is judged as, and its messages, so that the
    guard can close it and tell the application."""

    def __init__(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        self.request = request
        self.closed = False
        self._send = send
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._forwarding = asyncio.create_task(self._forward(receive))

    async def _forward(self, receive: Receive) -> None:
        """Pass the server's messages on to the application, until the client goes."""
        while True:
            message = await receive()
            self._inbox.put_nowait(message)
            if message["type"] == "websocket.disconnect":
                return

    async def receive(self) -> Message:
        return await self._inbox.get()

    async def send(self, message: Message) -> None:
        """Send the application's message, unless the guard closed the socket: nothing may follow."""
        if not self.closed:
            await self._send(message)

    async def close(self) -> None:
        """Close the socket with 1013, and tell the application it was disconnected."""
        self.closed = True
        self._forwarding.cancel()
        self._inbox.put_nowait({"type": "websocket.disconnect", "code": TRY_AGAIN_LATER})
        await self._send(closing())

    def stop(self) -> None:
        """The application is done: stop forwarding."""
        self._forwarding.cancel()


class Ticker:
    """The connections open on one event loop, and the one task that judges them again whenever
    the snapshot changes, and at least once per TTL (the clock alone opens a window or ends a bypass
    token, and with the fleet tier an unchanged state keeps its snapshot); it ends when the last
    connection closes."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.judged: Snapshot | None = None  # the snapshot the connections were last judged by
        self.judged_at = 0.0  # and when (time.monotonic())
        self.task = asyncio.create_task(self._run(), name=TICKER_NAME)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.connections:
                await asyncio.sleep(TICK)
                try:
                    await self.tick()
                except Exception:
                    logger.exception("Could not check the maintenance state for websockets")
        finally:
            tickers.pop(loop, None)

    async def tick(self) -> None:
        """Judge every connection again if the snapshot changed; close those now refused."""
        snapshot = await snapshot_to_judge()
        now = time.monotonic()
        if snapshot is self.judged and now - self.judged_at < conf.MAINTENANCE_STATE_TTL:
            return
        self.judged, self.judged_at = snapshot, now
        if snapshot.quiet and not overrides:
            return  # nothing is on anywhere: every connection stays
        failed: list[Exception] = []
        for count, connection in enumerate(list(self.connections), 1):
            if count % BATCH == 0:
                await asyncio.sleep(0)  # thousands of sockets: let the loop serve them meanwhile
            try:
                refused = (await adecide(connection.request, snapshot)).blocked
                if refused and connection in self.connections:  # the client may have gone meanwhile
                    self.connections.discard(connection)
                    await connection.close()
            except Exception as exc:  # one broken connection must not shield the others
                failed.append(exc)
        if failed:
            logger.error("Could not check %d websocket(s) against maintenance", len(failed), exc_info=failed[0])


#: each running event loop's ticker
tickers: dict[asyncio.AbstractEventLoop, Ticker] = {}


def watch(connection: Connection) -> Ticker:
    """Hand the connection to its loop's ticker (started if there is none)."""
    loop = asyncio.get_running_loop()
    ticker = tickers.get(loop)
    if ticker is None:
        ticker = tickers[loop] = Ticker()
    ticker.connections.add(connection)
    return ticker


class MaintenanceGuard:
    """ASGI middleware for Channels: refuse websocket handshakes during maintenance, and close
    open websockets when it starts, unless they would be let through as HTTP requests."""

    def __init__(self, inner: Application) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return await self.inner(scope, receive, send)
        request = request_for(scope)
        if (await adecide(request, await current_snapshot())).blocked:
            await receive()  # the handshake (websocket.connect): refused before it is accepted
            return await send(closing())
        connection = Connection(request, receive, send)
        ticker = watch(connection)
        try:
            await self.inner(scope, connection.receive, connection.send)
        finally:
            ticker.connections.discard(connection)
            connection.stop()
