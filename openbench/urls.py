"""Root URLs: pages, admin, health, metrics, and the API under /api/v1/."""

from django.contrib import admin
from django.urls import include, path

from openbench import views

urlpatterns = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("ready", views.ready, name="ready"),
    path("admin/", admin.site.urls),
    path("", include("django_prometheus.urls")),
]
