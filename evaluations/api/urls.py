"""/api/v1/executions, running a test, and the results lists under tests and executions."""

from django.urls import path, re_path
from rest_framework.routers import BaseRouter

from evaluations.api import exports, views


def register(router: BaseRouter) -> None:
    router.register("executions", views.ExecutionViewSet, basename="execution")


urlpatterns = [
    # The router's own pattern for a detail action (tests/{pk}/run, UUID ids only), so the URL, its
    # 404s and the OpenAPI path parameter are what they were when catalog's viewset routed it.
    re_path(
        rf"^tests/(?P<pk>{views.TestCaseRunViewSet.lookup_value_regex})/run$",
        views.TestCaseRunViewSet.as_view({"post": "run"}),
        name="test-case-run",
    ),
    path(
        "tests/<uuid:pk>/results",
        views.TestCaseResultViewSet.as_view({"get": "list"}),
        name="test-case-results",
    ),
    # Before the router's executions/{id} routes (which take UUIDs only, so they could not match it anyway).
    path("results/export", exports.ResultExportView.as_view(), name="result-export"),
    path("executions/estimate", views.EstimateView.as_view(), name="execution-estimate"),
    path(
        "executions/<uuid:pk>/results",
        views.ExecutionResultViewSet.as_view({"get": "list"}),
        name="execution-results",
    ),
]
