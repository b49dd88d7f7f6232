"""/api/v1/auth routes; openbench/api/urls.py registers the viewsets on the one router."""

from django.urls import path
from rest_framework.routers import BaseRouter

from accounts.api import views


def register(router: BaseRouter) -> None:
    router.register("auth/api-keys", views.ApiKeyViewSet, basename="api-key")


urlpatterns = [
    path("auth/register", views.RegisterView.as_view(), name="auth-register"),
    path("auth/login", views.LoginView.as_view(), name="auth-login"),
    path("auth/refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me", views.MeView.as_view(), name="auth-me"),
    path("auth/password", views.PasswordChangeView.as_view(), name="auth-password"),
    path("auth/password/reset", views.PasswordResetView.as_view(), name="auth-password-reset"),
    path("auth/password/reset/confirm", views.PasswordResetConfirmView.as_view(), name="auth-password-reset-confirm"),
]
