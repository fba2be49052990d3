from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "index.html", {"title": "Home"})


def ignored_page(request: HttpRequest) -> HttpResponse:
    return render(request, "ignored.html", {"title": "Ignored page"})


async def async_index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("async ok")
