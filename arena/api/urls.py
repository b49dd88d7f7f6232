"""/api/v1 paths of arena."""

from django.urls import URLPattern, path  # noqa: F401
from rest_framework.routers import BaseRouter


def register(router: BaseRouter) -> None:
    """Viewsets of arena on the shared router (none yet)."""


urlpatterns: list[URLPattern] = []
