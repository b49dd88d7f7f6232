"""Analytics pages: /leaderboard/, /compare/ and /models/<id>/."""

from django.urls import path

from leaderboard import views

app_name = "leaderboard"

urlpatterns = [
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("compare/", views.compare, name="compare"),
    path("models/<uuid:pk>/", views.model_detail, name="model-detail"),
]
