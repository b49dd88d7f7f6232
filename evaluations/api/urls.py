"""/api/v1/executions, and the results lists under tests and executions."""

from django.urls import path
from rest_framework.routers import BaseRouter

from evaluations.api import views


def register(router: BaseRouter) -> None:
    router.register("executions", views.ExecutionViewSet, basename="execution")


urlpatterns = [
    path(
        "tests/<uuid:pk>/results",
        views.TestCaseResultViewSet.as_view({"get": "list"}),
        name="test-case-results",
    ),
    path(
        "executions/<uuid:pk>/results",
        views.ExecutionResultViewSet.as_view({"get": "list"}),
        name="execution-results",
    ),
]
