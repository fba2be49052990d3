from django.contrib import admin
from django.urls import path

from testproject import views

urlpatterns = [
    path("", views.index, name="index"),
    path("ignored-page/", views.ignored_page, name="ignored-page"),
    path("async/", views.async_index, name="async-index"),
    path("admin/", admin.site.urls),
]
