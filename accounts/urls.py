"""Account pages: /login/, /logout/ (POST), /register/, /profile/ and its API keys."""

from django.contrib.auth.views import LogoutView
from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.EmailLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("register/", views.register, name="register"),
    path("profile/", views.profile, name="profile"),
    path("profile/api-keys/", views.api_key_create_view, name="api-key-create"),
    path("profile/api-keys/<uuid:pk>/revoke/", views.api_key_revoke_view, name="api-key-revoke"),
]
