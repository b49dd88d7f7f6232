"""JWT pairs for the API: issue on login, rotate on refresh (the old refresh token is blacklisted),
revoke on logout. simplejwt does the cryptography; these decide what a client gets back.

Every token carries a digest of the user's password hash (SIMPLE_JWT CHECK_REVOKE_TOKEN): simplejwt's
JWTAuthentication refuses an access token whose digest is stale, and token_pair_refresh refuses such a
refresh token, so a password change revokes everything issued before it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from rest_framework import exceptions
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts.models import User


def _access_lifetime_seconds() -> int:
    return int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())


def _pair(refresh: RefreshToken) -> dict[str, Any]:
    return {
        "access": str(refresh.access_token),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": _access_lifetime_seconds(),
    }


def _parse_refresh(raw: str) -> RefreshToken:
    """A valid, unexpired, not blacklisted refresh token, else a 401."""
    try:
        return RefreshToken(raw)  # type: ignore[arg-type]
    except TokenError as exc:
        raise exceptions.AuthenticationFailed(
            "The refresh token is invalid, expired or revoked.", "token_not_valid"
        ) from exc


def token_pair_issue(*, user: User) -> dict[str, Any]:
    """A fresh access/refresh pair for a user who just proved who they are."""
    return _pair(RefreshToken.for_user(user))


@transaction.atomic
def token_pair_refresh(*, raw_refresh: str) -> dict[str, Any]:
    """Rotate: blacklist the presented refresh token and hand out a new pair.

    A refresh token can therefore be used once; replaying a stolen one fails with 401.
    """
    old = _parse_refresh(raw_refresh)
    user_id = old.payload.get(settings.SIMPLE_JWT.get("USER_ID_CLAIM", "user_id"))
    user = User.objects.filter(pk=str(user_id)).first() if user_id else None
    if user is None or not user.is_active:
        raise exceptions.AuthenticationFailed("No active account found for this token.", "no_active_account")
    if jwt_settings.CHECK_REVOKE_TOKEN and old.payload.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(
        user.password
    ):
        raise exceptions.AuthenticationFailed(
            "The password has changed since this token was issued; log in again.", "password_changed"
        )
    old.blacklist()
    return _pair(RefreshToken.for_user(user))


def token_revoke(*, raw_refresh: str) -> None:
    """Logout: the refresh token stops working; access tokens expire on their own shortly."""
    _parse_refresh(raw_refresh).blacklist()
