"""``MaintenanceModeMiddleware``: sync and async, a thin shell over decisions and responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase

from maintenance_flags import bypass
from maintenance_flags.audit import current_request
from maintenance_flags.decisions import REQUEST_ATTR, SAFE_METHODS, adecide, decide
from maintenance_flags.responses import amaintenance_response, maintenance_response
from maintenance_flags.store import store


class MaintenanceModeMiddleware:
    """Serve the maintenance response to visitors of a site in maintenance.

    Place it after ``AuthenticationMiddleware``.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase] | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        snapshot = store.get()
        if (link := bypass.link_response(request, snapshot)) is not None:
            return link
        verdict = decide(request, snapshot)
        setattr(request, REQUEST_ATTR, verdict)
        if verdict.blocked:
            return maintenance_response(request, verdict.state)
        if request.method in SAFE_METHODS:  # changes no state: the audit will not ask who is acting
            return self.get_response(request)
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        snapshot = store.without_io() or await sync_to_async(store.get)()
        if (link := bypass.link_response(request, snapshot)) is not None:
            return link
        verdict = await adecide(request, snapshot)
        setattr(request, REQUEST_ATTR, verdict)
        if verdict.blocked:
            return await amaintenance_response(request, verdict.state)
        if request.method in SAFE_METHODS:
            return await cast(Awaitable[HttpResponseBase], self.get_response(request))
        token = current_request.set(request)
        try:
            return await cast(Awaitable[HttpResponseBase], self.get_response(request))
        finally:
            current_request.reset(token)
