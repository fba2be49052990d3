"""Which user a decision asks about: the one the sync path sees, on the ASGI path too.

The user is loaded only when a decision waits on it (a blocked request that staff could pass),
and not at all when it could only be anonymous (no session), which would cost a session lookup
and a ``Vary: Cookie`` for nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import alogout, logout
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject, empty

from maintenance_flags.conf import conf

logger = logging.getLogger("maintenance_flags")


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


def sign_out(request: HttpRequest) -> None:
    """With ``MAINTENANCE_LOGOUT_USERS``, sign out a signed-in user who was not let through
    (the session is flushed), so they sign in again once maintenance is over."""
    if conf.MAINTENANCE_LOGOUT_USERS:
        user = load_user(request)
        if user is not None and user.is_authenticated:
            logout(request)


async def asign_out(request: HttpRequest) -> None:
    if conf.MAINTENANCE_LOGOUT_USERS:
        user = await aload_user(request)
        if user is not None and user.is_authenticated:
            await alogout(request)
