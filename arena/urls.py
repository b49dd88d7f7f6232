"""Arena pages."""

from django.urls import URLPattern, path  # noqa: F401

app_name = "arena"

urlpatterns: list[URLPattern] = []
