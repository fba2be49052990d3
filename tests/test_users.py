"""Who counts as staff, and which user is asked: the sync and the ASGI paths agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.utils.functional import SimpleLazyObject

from maintenance_flags.middleware import MaintenanceModeMiddleware
from maintenance_flags.users import aload_user, load_user
from tests.utils import turn

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("maintenance_on")]

ALLOW_INACTIVE = ["django.contrib.auth.backends.AllowAllUsersModelBackend"]


def get(client: Client | AsyncClient, path: str, token: str | None = None) -> int:
    headers = {"X-Token": token} if token else {}
    if isinstance(client, AsyncClient):
        return int(async_to_sync(client.get)(path, headers=headers).status_code)
    return int(client.get(path, headers=headers).status_code)


def signed_in(client: Client | AsyncClient, user: Any) -> Client | AsyncClient:
    if isinstance(client, AsyncClient):
        async_to_sync(client.aforce_login)(user)
    else:
        client.force_login(user)
    return client


CLIENTS = [pytest.param(Client, id="wsgi"), pytest.param(AsyncClient, id="asgi")]


@override_settings(AUTHENTICATION_BACKENDS=ALLOW_INACTIVE)
@pytest.mark.parametrize("client_class", CLIENTS)
@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_inactive_staff_are_not_let_through(django_user_model: Any, client_class: type, flag: str) -> None:
    """A security fix: 1.0 let an inactive staff account (signed in through a backend that allows
    inactive users) past maintenance."""
    user = django_user_model.objects.create_user("former", password="pw", is_active=False, **{flag: True})
    client = signed_in(client_class(), user)
    assert get(client, "/") == 503
    assert get(client, "/async/") == 503
    user.is_active = True
    user.save()
    assert get(client, "/") == 200


class TokenUserMiddleware:
    """Like an API-token middleware: ``X-Token: staff|visitor`` replaces ``request.user``."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        from django.contrib.auth import get_user_model

        token = request.headers.get("X-Token")
        if token == "visitor":
            request.user = AnonymousUser()
        elif token == "staff":
            request.user = get_user_model().objects.get(username="robot")
        return self.get_response(request)


def _middleware_with_token_user() -> list[str]:
    middleware = list(settings.MIDDLEWARE)
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    middleware.insert(auth + 1, f"{__name__}.TokenUserMiddleware")
    return middleware


@pytest.mark.parametrize("client_class", CLIENTS)
def test_a_replaced_user_is_the_one_asked(staff_client: Client, django_user_model: Any, client_class: type) -> None:
    """A security fix: under ASGI, 1.0 asked ``request.auser()`` (the session's user) even when an
    earlier middleware had replaced ``request.user``, so the two paths disagreed."""
    django_user_model.objects.create_user("robot", is_staff=True)
    staff = django_user_model.objects.get(username="staff")
    with override_settings(MIDDLEWARE=_middleware_with_token_user()):
        client = signed_in(client_class(), staff)
        assert get(client, "/") == 200  # the session's staff user
        assert get(client, "/", token="visitor") == 503  # replaced by an anonymous user
        assert get(client, "/async/", token="visitor") == 503
        anonymous = client_class()
        assert get(anonymous, "/") == 503
        assert get(anonymous, "/", token="staff") == 200  # replaced by a staff user


def _request_through_auth_middleware(session_key: str | None) -> HttpRequest:
    request = RequestFactory().get("/")
    request.session = SessionStore(session_key=session_key)
    AuthenticationMiddleware(lambda r: HttpResponse()).process_request(request)
    return request


def test_async_user_from_auth_middleware_is_loaded_with_auser(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise DatabaseError("database is down")

    request = _request_through_auth_middleware("x" * 32)
    request.auser = broken  # type: ignore[assignment]
    assert async_to_sync(aload_user)(request) is None
    assert "treating the request as anonymous" in caplog.text


def test_a_lazy_user_from_another_middleware_is_loaded_in_a_thread() -> None:
    request = _request_through_auth_middleware(None)
    replaced = AnonymousUser()
    request.user = SimpleLazyObject(lambda: replaced)  # type: ignore[assignment]
    assert async_to_sync(aload_user)(request) == replaced  # the lazy object, loaded


def test_loaded_or_missing_users_need_no_io() -> None:
    request = RequestFactory().get("/")
    assert async_to_sync(aload_user)(request) is None  # no AuthenticationMiddleware at all
    request.user = AnonymousUser()
    assert async_to_sync(aload_user)(request) is request.user
    assert load_user(request) is request.user


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

    request.auser = auser
    assert async_to_sync(aload_user)(request) is None
    assert async_to_sync(aload_user)(RequestFactory().get("/")) is None  # no AuthenticationMiddleware


def test_no_session_means_anonymous_without_loading_the_user(caplog: pytest.LogCaptureFixture) -> None:
    from django.contrib.auth.middleware import AuthenticationMiddleware
    from django.contrib.sessions.backends.db import SessionStore

    async def broken_auser() -> None:
        _broken_user()

    request = RequestFactory().get("/")
    request.session = SessionStore()  # no cookie: no key
    AuthenticationMiddleware(lambda r: HttpResponse()).process_request(request)
    request.auser = broken_auser  # type: ignore[assignment]
    assert load_user(request) is None
    assert async_to_sync(aload_user)(request) is None
    assert not request.session.accessed  # the user was not loaded: no session read, no Vary: Cookie
    assert "treating the request as anonymous" not in caplog.text
    request.session = SessionStore(session_key="x" * 32)  # a session: the user must be loaded
    assert async_to_sync(aload_user)(request) is None  # auser() raised: anonymous, logged
    assert "treating the request as anonymous" in caplog.text
