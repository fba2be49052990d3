from django.urls import path

from benchsite import views

urlpatterns = [
    path("", views.index),
    path("async/", views.async_index),
]
