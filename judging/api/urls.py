"""/api/v1 paths of judging: labels on results and judges' agreement (SPEC §13)."""

from django.urls import URLPattern, path
from rest_framework.routers import BaseRouter

from judging.api import views


def register(router: BaseRouter) -> None:
    """Judging has plain paths only (below)."""


urlpatterns: list[URLPattern] = [
    path("results/<uuid:pk>/label", views.ResultLabelViewSet.as_view({"post": "label"}), name="result-label"),
    path(
        "judges/<uuid:pk>/agreement",
        views.JudgeAgreementViewSet.as_view({"get": "agreement"}),
        name="judge-agreement",
    ),
]
