"""``@maintenance_exempt`` exempts the route it wraps, not every route to the same function."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path

from maintenance_flags.decorators import maintenance_exempt

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("maintenance_on")]


def report(request: HttpRequest) -> HttpResponse:
    return HttpResponse("report")


async def areport(request: HttpRequest) -> HttpResponse:
    return HttpResponse("async report")


urlpatterns = [
    path("public/report/", maintenance_exempt(report)),
    path("private/report/", report),
    path("public/areport/", maintenance_exempt(areport)),
    path("private/areport/", areport),
]


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize("name", ["report", "areport"])
def test_only_the_wrapped_route_is_exempt(name: str) -> None:
    public = Client().get(f"/public/{name}/")
    assert public.status_code == 200
    assert public.content.decode().endswith("report")
    assert Client().get(f"/private/{name}/").status_code == 503


@override_settings(ROOT_URLCONF=__name__)
def test_only_the_wrapped_route_is_exempt_under_asgi() -> None:
    assert async_to_sync(AsyncClient().get)("/public/areport/").status_code == 200
    assert async_to_sync(AsyncClient().get)("/private/areport/").status_code == 503


def test_wrapper_keeps_the_view_unmarked_and_callable() -> None:
    wrapped = maintenance_exempt(report)
    assert wrapped is not report
    assert wrapped.__name__ == "report"
    assert not hasattr(report, "maintenance_exempt")
