from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from testproject import views

api_patterns = (
    [path("status/", views.api_status, name="status"), path("other/", views.api_other, name="other")],
    "api",
)

urlpatterns = [
    path("", views.index, name="index"),
    path("ignored-page/", views.ignored_page, name="ignored-page"),
    path("async/", views.async_index, name="async-index"),
    path("healthz", views.healthz, name="healthz"),
    path("exempt/", views.exempt, name="exempt"),
    path("async-exempt/", views.async_exempt, name="async-exempt"),
    path("forced/", views.forced, name="forced"),
    path("async-forced/", views.async_forced, name="async-forced"),
    path("submit/", views.submit, name="submit"),
    path("api/", include(api_patterns)),
    path("admin/", admin.site.urls),
]
