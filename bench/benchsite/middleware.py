"""The naive way to do maintenance with waffle: one ``switch_is_active`` call per request."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

SWITCH = "maintenance_mode"


class NaiveWaffleMaintenanceMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        import waffle

        if waffle.switch_is_active(SWITCH):
            return render(request, "503.html", status=503)
        return self.get_response(request)
