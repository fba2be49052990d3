"""View decorators: ``@maintenance_exempt`` (always served) and ``@force_maintenance``."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest

from maintenance_flags.decisions import EXEMPT_ATTR, adecide, decide
from maintenance_flags.responses import amaintenance_response, maintenance_response
from maintenance_flags.store import store

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., Any])


def maintenance_exempt(view: ViewFunc) -> ViewFunc:
    """Serve this view even while its site is in maintenance (or read-only).

    Like ``csrf_exempt``, it returns a wrapper that carries the mark: other routes to the
    same function (``path("a/", view)`` beside ``path("b/", maintenance_exempt(view))``)
    are not exempt.
    """
    if iscoroutinefunction(view):

        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return await view(request, *args, **kwargs)

        wrapper: Callable[..., Any] = async_wrapper
    else:

        def sync_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return view(request, *args, **kwargs)

        wrapper = sync_wrapper
    setattr(wrapper, EXEMPT_ATTR, True)
    return wraps(view)(wrapper)  # type: ignore[return-value]


def force_maintenance(view: ViewFunc) -> ViewFunc:
    """Serve the maintenance response from this view, whatever the site's state.

    The usual exemptions apply (ignored URLs, allowed IPs, bypass tokens, staff), and the
    response is the same as the middleware's, headers included. Works on sync and async views.
    """
    if iscoroutinefunction(view):

        @wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            snapshot = store.without_io() or await sync_to_async(store.get)()
            verdict = await adecide(request, snapshot, force=True)
            if verdict.blocked:
                return await amaintenance_response(request, verdict.state)
            return await view(request, *args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        verdict = decide(request, store.get(), force=True)
        if verdict.blocked:
            return maintenance_response(request, verdict.state)
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
