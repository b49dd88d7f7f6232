"""/api/v1/auth: registration, JWT login/refresh/logout, password change and reset, the current user,
and API keys."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, update_session_auth_hash
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, permissions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import serializers
from accounts.api.tokens import token_pair_issue, token_pair_refresh, token_revoke
from accounts.lockout import LOCKED_MESSAGE, lock_window_seconds
from accounts.models import ApiKey, User
from accounts.services import (
    api_key_create,
    api_key_revoke,
    password_reset_confirm,
    password_reset_send,
    user_create,
    user_password_change,
)
from openbench.api.schema import error_response
from openbench.api.throttles import DEFAULT_THROTTLES, LoginThrottle, PasswordResetThrottle, RegisterThrottle
from openbench.api.viewsets import BaseAPIView, BaseViewSet

RESET_SENT = "If an account has this address, a password-reset link is on its way to it."


class LoginLocked(exceptions.Throttled):
    """django-axes refused the attempt: the account or the client address is locked for a while."""

    default_detail = LOCKED_MESSAGE
    default_code = "login_locked"


def _check_password(request: HttpRequest, *, email: str, password: str) -> User | None:
    """The user these credentials prove, through Django's authenticate so django-axes counts a failure
    and refuses a locked account or address (LoginLocked, 429) even when the password is right."""
    user = authenticate(request, email=email.strip().lower(), password=password)
    if user is None and getattr(request, "axes_locked_out", False):
        raise LoginLocked(wait=lock_window_seconds())
    return user if isinstance(user, User) else None


class _CredentialView(BaseAPIView):
    """Endpoints that take credentials in the body."""

    # These endpoints take credentials in the body; a stale session or header must not get in the way
    # (SessionAuthentication would demand a CSRF token from a logged-in browser).
    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        # Without authenticators DRF would turn a failed login into a 403; it is a 401 (SPEC §7).
        return 'Bearer realm="api"'


class RegisterView(_CredentialView):
    """Create an account with email and password (Django's password validators apply); role `user`.
    Throttled per client address (`register`); a taken address is a 409 (see user_create)."""

    throttle_classes = [RegisterThrottle, *DEFAULT_THROTTLES]

    @extend_schema(
        tags=["auth"],
        request=serializers.RegisterSerializer,
        responses={201: serializers.UserSerializer, 409: error_response("409")},
        summary="Create an account",
    )
    def post(self, request: Request) -> Response:
        data = serializers.RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = user_create(**data.validated_data)
        except DjangoValidationError as exc:  # the password validators
            raise exceptions.ValidationError({"password": exc.messages}) from exc
        return Response(serializers.UserSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(_CredentialView):
    """Exchange email and password for a JWT pair; 401 on bad credentials, throttled per address,
    429 `login_locked` while django-axes holds a lock on the account or the address."""

    throttle_classes = [LoginThrottle, *DEFAULT_THROTTLES]

    @extend_schema(
        tags=["auth"],
        request=serializers.LoginSerializer,
        responses=serializers.TokenPairSerializer,
        summary="Exchange email and password for a JWT pair",
    )
    def post(self, request: Request) -> Response:
        data = serializers.LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = _check_password(
            request._request, email=data.validated_data["email"], password=data.validated_data["password"]
        )
        if user is None:
            # One message for an unknown email and a wrong password: no account enumeration.
            raise exceptions.AuthenticationFailed("Invalid email or password.", "invalid_credentials")
        return Response(token_pair_issue(user=user))


class RefreshView(_CredentialView):
    """Rotate a refresh token: the presented one is revoked, a new pair is returned."""

    @extend_schema(
        tags=["auth"],
        request=serializers.RefreshSerializer,
        responses=serializers.TokenPairSerializer,
        summary="Rotate a refresh token into a new JWT pair",
    )
    def post(self, request: Request) -> Response:
        data = serializers.RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(token_pair_refresh(raw_refresh=data.validated_data["refresh"]))


class LogoutView(_CredentialView):
    """Revoke a refresh token; access tokens expire on their own."""

    @extend_schema(
        tags=["auth"],
        request=serializers.RefreshSerializer,
        responses={204: None},
        summary="Revoke a refresh token",
    )
    def post(self, request: Request) -> Response:
        data = serializers.RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token_revoke(raw_refresh=data.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(BaseAPIView):
    """Change one's password; every earlier access and refresh token stops working, a new pair is returned."""

    permission_classes = [permissions.IsAuthenticated]
    # It checks a password, so it has the log-in budget and django-axes' locks: a stolen access token
    # is no way to guess the password.
    throttle_classes = [LoginThrottle, *DEFAULT_THROTTLES]

    @extend_schema(
        tags=["auth"],
        request=serializers.PasswordChangeSerializer,
        responses=serializers.TokenPairSerializer,
        summary="Change the password (revokes earlier tokens)",
    )
    def post(self, request: Request) -> Response:
        data = serializers.PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user
        assert isinstance(user, User)
        proved = _check_password(request._request, email=user.email, password=data.validated_data["old_password"])
        if proved is None or proved.pk != user.pk:
            raise exceptions.ValidationError({"old_password": ["The current password is not correct."]})
        user_password_change(user=user, new_password=data.validated_data["new_password"])
        if isinstance(request.successful_authenticator, SessionAuthentication):
            update_session_auth_hash(request._request, user)  # keep this browser logged in
        return Response(token_pair_issue(user=user))


class PasswordResetView(_CredentialView):
    """Ask for a password-reset e-mail; the same 202 whether or not the address has an account."""

    throttle_classes = [PasswordResetThrottle, *DEFAULT_THROTTLES]

    @extend_schema(
        tags=["auth"],
        request=serializers.PasswordResetSerializer,
        responses={202: serializers.DetailSerializer},
        summary="Send a password-reset e-mail",
    )
    def post(self, request: Request) -> Response:
        data = serializers.PasswordResetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        password_reset_send(email=data.validated_data["email"], request=request._request)
        return Response({"detail": RESET_SENT}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(_CredentialView):
    """Set a new password with the `uid` and `token` of a reset e-mail; 400 `invalid_token` otherwise."""

    throttle_classes = [PasswordResetThrottle, *DEFAULT_THROTTLES]

    @extend_schema(
        tags=["auth"],
        request=serializers.PasswordResetConfirmSerializer,
        responses=serializers.DetailSerializer,
        summary="Set a new password from a reset e-mail",
    )
    def post(self, request: Request) -> Response:
        data = serializers.PasswordResetConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        password_reset_confirm(**data.validated_data)
        return Response({"detail": "Your password has been set. Log in with the new one."})


class MeView(BaseAPIView):
    """The authenticated caller."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(tags=["auth"], responses=serializers.MeSerializer, summary="The current user and their budget")
    def get(self, request: Request) -> Response:
        from evaluations.budgets import budget_of  # an interface may compose apps; accounts' models may not

        assert isinstance(request.user, User)
        context = {"budget": budget_of(request.user)}
        return Response(serializers.MeSerializer(request.user, context=context).data)


@extend_schema(tags=["auth"])
class ApiKeyViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, BaseViewSet):
    """The caller's own API keys; another user's key is a 404."""

    queryset = ApiKey.objects.all()
    serializer_class = serializers.ApiKeySerializer
    permission_classes = [permissions.IsAuthenticated]
    filter_backends: list[Any] = []

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        user = self.request.user
        return queryset.filter(user=user) if user.is_authenticated else queryset.none()

    @extend_schema(
        request=serializers.ApiKeyCreateSerializer,
        responses={201: serializers.ApiKeyCreatedSerializer},
        summary="Create an API key (the secret is in this response only)",
    )
    def create(self, request: Request) -> Response:
        data = serializers.ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = api_key_create(user=request.user, name=data.validated_data["name"])  # type: ignore[arg-type]
        key.key = secret  # type: ignore[attr-defined]
        return Response(serializers.ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API key")
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        api_key_revoke(api_key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
