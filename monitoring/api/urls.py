"""/api/v1 paths of monitoring: suite runs, schedules, alerts."""

from django.urls import URLPattern, path
from rest_framework.routers import BaseRouter

from monitoring.api import views


def register(router: BaseRouter) -> None:
    router.register("schedules", views.ScheduleViewSet, basename="schedule")
    router.register("alerts", views.AlertViewSet, basename="alert")


urlpatterns: list[URLPattern] = [
    path("suites/<uuid:pk>/run", views.SuiteRunViewSet.as_view({"post": "run"}), name="suite-run"),
    path("schedules/<uuid:pk>/run-now", views.ScheduleViewSet.as_view({"post": "run_now"}), name="schedule-run-now"),
    path("alerts/<uuid:pk>/acknowledge", views.AlertViewSet.as_view({"post": "acknowledge"}), name="alert-acknowledge"),
]
