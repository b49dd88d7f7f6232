"""Arena pages."""

from django.urls import URLPattern, path

from arena import views

app_name = "arena"

urlpatterns: list[URLPattern] = [
    path("arena/", views.arena, name="arena"),
    path("arena/ratings/", views.ratings, name="ratings"),
    path("arena/battles/<uuid:pk>/", views.battle, name="battle"),
    path("arena/battles/<uuid:pk>/vote", views.vote, name="vote"),
]
