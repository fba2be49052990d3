"""The minimal views: what every variant serves when it lets a request through."""

from django.http import HttpRequest, HttpResponse


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


async def async_index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")
