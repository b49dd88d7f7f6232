"""Analytics routes, included under /api/v1/ before the router (so models/<id>/performance is ours)."""

from django.urls import path

from leaderboard.api import views

urlpatterns = [
    path("leaderboard", views.LeaderboardView.as_view(), name="leaderboard"),
    path("analytics/trends", views.TrendsView.as_view(), name="analytics-trends"),
    path("analytics/compare", views.CompareView.as_view(), name="analytics-compare"),
    path("models/<uuid:pk>/performance", views.ModelPerformanceView.as_view(), name="model-performance"),
    path("models/<uuid:pk>/stability", views.ModelStabilityView.as_view(), name="model-stability"),
]
