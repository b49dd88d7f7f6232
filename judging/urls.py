"""Judging pages."""

from django.urls import URLPattern, path  # noqa: F401

app_name = "judging"

urlpatterns: list[URLPattern] = []
