"""DRF authentication by `X-API-Key`."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.services import api_key_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates `X-API-Key: <key>`; a wrong or revoked key is a 401, never anonymous access."""

    header = "X-API-Key"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        secret = request.headers.get(self.header)
        if not secret:
            return None
        key = api_key_authenticate(secret=secret)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return self.header
