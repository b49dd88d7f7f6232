"""One error envelope for every API error: {"error": {"code", "message", "details", "request_id"}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from openbench.exceptions import ApplicationError
from openbench.logging import get_request_id


def error_body(*, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}, "request_id": get_request_id()}}


def _first_message(details: Any) -> str:
    """A readable one-line summary of DRF's nested error details."""
    if isinstance(details, dict):
        for field, value in details.items():
            inner = _first_message(value)
            return inner if field in ("non_field_errors", "detail") else f"{field}: {inner}"
    if isinstance(details, list) and details:
        return _first_message(details[0])
    return str(details)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turns DRF, Django and domain errors into the envelope; anything else stays a 500."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(code=exc.code, message=exc.message, details=exc.details), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        field_errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail=field_errors)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    details: Any
    if isinstance(exc, exceptions.ValidationError):
        code, message, details = "validation_error", _first_message(exc.detail), exc.detail
    else:
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        message, details = str(detail), {}
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            details = {"retry_after_seconds": int(wait)}
    if response.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        code = "request_too_large"
    response.data = error_body(code=str(code), message=message, details=details)
    return response
