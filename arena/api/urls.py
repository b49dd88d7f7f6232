"""/api/v1 paths of arena (SPEC §13)."""

from django.urls import URLPattern, path
from rest_framework.routers import BaseRouter

from arena.api import views


def register(router: BaseRouter) -> None:
    """Arena has plain views only, no viewsets on the shared router."""


urlpatterns: list[URLPattern] = [
    path("arena/battles", views.BattleCreateView.as_view(), name="arena-battles"),
    path("arena/battles/<uuid:pk>/vote", views.VoteView.as_view(), name="arena-vote"),
    path("arena/ratings", views.RatingsView.as_view(), name="arena-ratings"),
    path("arena/users/<uuid:pk>/void-votes", views.VoidVotesView.as_view(), name="arena-void-votes"),
]
