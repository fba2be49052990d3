"""``MaintenanceModeMiddleware``: sync and async, thin over decisions and responses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import SimpleLazyObject, empty

from maintenance_flags import bypass
from maintenance_flags.audit import current_request
from maintenance_flags.decisions import SAFE_METHODS, Verdict, evaluate
from maintenance_flags.responses import amaintenance_response, maintenance_response
from maintenance_flags.state import Snapshot, store

logger = logging.getLogger("maintenance_flags")

REQUEST_ATTR = "maintenance_flags"


def _user_failed(exc: Exception) -> None:
    logger.warning("Could not load the user; treating the request as anonymous", exc_info=exc)


def _unloaded(user: Any) -> bool:
    return isinstance(user, SimpleLazyObject) and user._wrapped is empty


def _from_auth_middleware(user: Any) -> bool:
    """The lazy user that ``AuthenticationMiddleware`` set (its ``auser()`` gives the same user)."""
    setup = user.__dict__.get("_setupfunc")
    return getattr(setup, "__module__", None) == "django.contrib.auth.middleware"


def surely_anonymous(request: HttpRequest) -> bool:
    """The user is still AuthenticationMiddleware's unloaded lazy object and there is no session:
    loading it would only give AnonymousUser, at the cost of a session lookup (and ``Vary: Cookie``)."""
    user = getattr(request, "user", None)
    if not _unloaded(user) or not _from_auth_middleware(user):
        return False  # loaded, or another middleware's user: that one decides
    session = getattr(request, "session", None)
    return session is not None and getattr(session, "session_key", "") is None


def load_user(request: HttpRequest) -> Any:
    if surely_anonymous(request):
        return None
    user = getattr(request, "user", None)
    try:
        bool(user is not None and user.is_authenticated)  # forces the lazy user to load
    except Exception as exc:
        _user_failed(exc)
        return None
    return user


async def aload_user(request: HttpRequest) -> Any:
    """The same user :func:`load_user` gives, without blocking the event loop.

    ``request.auser()`` answers for ``AuthenticationMiddleware``'s user only: when an earlier
    middleware replaced ``request.user``, that user is the one the sync path sees, so it is the
    one asked here too (loaded in a thread if it is still lazy).
    """
    if surely_anonymous(request):
        return None
    user = getattr(request, "user", None)
    auser = getattr(request, "auser", None)
    try:
        if _unloaded(user) and auser is not None and _from_auth_middleware(user):
            return await auser()
    except Exception as exc:
        _user_failed(exc)
        return None
    if _unloaded(user):
        return await sync_to_async(load_user)(request)
    return load_user(request)


def decide(request: HttpRequest, snapshot: Snapshot, force: bool = False) -> Verdict:
    """:func:`~maintenance_flags.decisions.evaluate`, loading the user only if the decision waits on it."""
    verdict = evaluate(request, snapshot, force)
    return verdict.with_user(load_user(request)) if verdict.needs_user else verdict


async def adecide(request: HttpRequest, snapshot: Snapshot, force: bool = False) -> Verdict:
    verdict = evaluate(request, snapshot, force)
    return verdict.with_user(await aload_user(request)) if verdict.needs_user else verdict


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


def request_verdict(request: HttpRequest) -> Verdict | None:
    """The verdict the middleware stored on this request, if it ran."""
    verdict = getattr(request, REQUEST_ATTR, None)
    return verdict if isinstance(verdict, Verdict) else None
