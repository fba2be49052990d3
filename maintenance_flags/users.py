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

logger = logging.getLogger("maintenance_flags")


def _user_failed(exc: Exception) -> None:
    logger.warning("Could not load the user; treating the request as anonymous", exc_info=exc)


AUTH_MIDDLEWARE_MODULE = "django.contrib.auth.middleware"


def _lazy_state(user: Any) -> dict[str, Any] | None:
    """A still-unloaded lazy user's own attributes (read without going through the proxy), else None."""
    if not isinstance(user, SimpleLazyObject):
        return None
    own: dict[str, Any] = object.__getattribute__(user, "__dict__")
    return own if own.get("_wrapped") is empty else None


def _unloaded(user: Any) -> bool:
    return _lazy_state(user) is not None


def _from_auth_middleware(user: Any) -> bool:
    """The unloaded lazy user that ``AuthenticationMiddleware`` set (its ``auser()`` gives the same)."""
    own = _lazy_state(user)
    return own is not None and getattr(own.get("_setupfunc"), "__module__", None) == AUTH_MIDDLEWARE_MODULE


def surely_anonymous(request: HttpRequest) -> bool:
    """The user is still AuthenticationMiddleware's unloaded lazy object and there is no session:
    loading it would only give AnonymousUser, at the cost of a session lookup (and ``Vary: Cookie``)."""
    if not _from_auth_middleware(getattr(request, "user", None)):
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
        if auser is not None and _from_auth_middleware(user):
            return await auser()
    except Exception as exc:
        _user_failed(exc)
        return None
    if _unloaded(user):
        return await sync_to_async(load_user)(request)
    return load_user(request)


def sign_out(request: HttpRequest) -> None:
    """Sign out a signed-in user (the session is flushed), so they sign in again once maintenance
    is over: for a user who was not let through, with ``MAINTENANCE_LOGOUT_USERS``."""
    user = load_user(request)
    if user is not None and user.is_authenticated:
        logout(request)


async def asign_out(request: HttpRequest) -> None:
    user = await aload_user(request)
    if user is not None and user.is_authenticated:
        await alogout(request)
