"""Test-only URLs for the statement-timeout tests: the project's URLs plus views that sleep in the
database, report the limit they run under, or crash after a query. Never part of openbench.urls."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from openbench.api.viewsets import BaseAPIView


def _timeout_in_effect() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        row = cursor.fetchone()
    return str(row[0]) if row else ""


def _sleep() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(1)")


class SleepView(BaseAPIView):
    """An API request whose query takes a second."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        _sleep()
        return Response({"slept": True})


def sleep_page(request: HttpRequest) -> HttpResponse:
    _sleep()
    return HttpResponse("slept")


def timeout_in_effect(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"statement_timeout": _timeout_in_effect()})


def crash_after_a_query(request: HttpRequest) -> HttpResponse:
    _timeout_in_effect()
    raise RuntimeError("a bug in a view")


urlpatterns = [
    path("api/v1/_test/sleep", SleepView.as_view()),
    path("_test/sleep", sleep_page),
    path("_test/timeout", timeout_in_effect),
    path("_test/crash", crash_after_a_query),
    path("", include("openbench.urls")),
]

handler400 = "openbench.api.exceptions.handler400"
handler404 = "openbench.api.exceptions.handler404"
handler500 = "openbench.api.exceptions.handler500"
