from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from maintenance_flags.decorators import force_maintenance, maintenance_exempt


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "index.html", {"title": "Home"})


def ignored_page(request: HttpRequest) -> HttpResponse:
    return render(request, "ignored.html", {"title": "Ignored page"})


async def async_index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("async ok")


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@maintenance_exempt
def exempt(request: HttpRequest) -> HttpResponse:
    return HttpResponse("exempt ok")


@maintenance_exempt
async def async_exempt(request: HttpRequest) -> HttpResponse:
    return HttpResponse("async exempt ok")


@force_maintenance
def forced(request: HttpRequest) -> HttpResponse:
    return HttpResponse("never served to visitors")


@force_maintenance
async def async_forced(request: HttpRequest) -> HttpResponse:
    return HttpResponse("never served to visitors")


@csrf_exempt
def submit(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"{request.method} ok")


def api_status(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def api_other(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"other": "ok"})
