"""OpenAPI pieces drf-spectacular cannot infer: the X-API-Key scheme and the error envelope,
documented on every operation."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. validation_error, not_found.")
    message = serializers.CharField(help_text="One readable sentence.")
    details = serializers.JSONField(help_text="Field errors for 400s ({field: [messages]}), else extra context.")
    request_id = serializers.CharField(help_text="The X-Request-ID of the request, for support and logs.")


class ErrorSerializer(serializers.Serializer):
    """The one shape of every error the API returns."""

    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    "400": "Invalid input; `details` maps each field to its messages.",
    "401": "Missing or invalid credentials.",
    "402": "Over budget: `budget_exceeded` (the caller's daily budget) or `provider_budget_exceeded` (a "
    "provider's monthly cap); `details` has `estimate_usd` and `remaining_usd`. Nothing was started.",
    "403": "Authenticated, but not allowed.",
    "404": "Not found, or not visible to the caller.",
    "409": "Conflicts with the object's current state.",
    "413": "The request body is too large.",
    "429": "Throttled; retry after the `Retry-After` header's seconds.",
}


def error_response(status_code: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=ERROR_DESCRIPTIONS[status_code])


class OpenBenchAutoSchema(AutoSchema):
    """Adds the error envelope to every operation for each error status it can answer."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        codes = ["400", "401", "403", "404", "429"]
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append("413")
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(error_response(code), code, direction=direction)
        return responses


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents accounts.authentication.ApiKeyAuthentication (`X-API-Key: <key>`)."""

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "A personal API key from POST /api/v1/auth/api-keys.",
        }
