"""/api/v1 tests, models and the moderation queue."""

from django.urls import path
from rest_framework.routers import BaseRouter

from catalog.api import importing, views


def register(router: BaseRouter) -> None:
    router.register("tests", views.TestCaseViewSet, basename="test-case")
    router.register("models", views.LLMModelViewSet, basename="llm-model")
    router.register("suites", views.SuiteViewSet, basename="suite")


urlpatterns = [
    # A literal path: the router's tests/{pk} routes take UUIDs only, so they never shadow it.
    path("tests/import", importing.TestImportView.as_view(), name="test-case-import"),
    path("admin/pending", views.ModerationViewSet.as_view({"get": "list"}), name="moderation-pending"),
    path(
        "admin/approve/<uuid:test_id>",
        views.ModerationViewSet.as_view({"post": "approve"}),
        name="moderation-approve",
    ),
    path(
        "admin/reject/<uuid:test_id>",
        views.ModerationViewSet.as_view({"post": "reject"}),
        name="moderation-reject",
    ),
]
