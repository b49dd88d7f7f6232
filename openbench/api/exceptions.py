"""One error envelope for every API error: {"error": {"code", "message", "details", "request_id"}}.

DRF's errors go through `exception_handler`; errors Django answers itself (an unknown /api/ path,
a body over DATA_UPLOAD_MAX_MEMORY_SIZE read by a middleware, a crash) go through the handler400/
handler404/handler500 views below, which answer the same envelope for /api/ paths and fall back to
Django's pages everywhere else.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from openbench.exceptions import ApplicationError
from openbench.logging import get_request_id

API_PREFIX = "/api/"


class RequestTooLarge(exceptions.APIException):
    """A body over settings.DATA_UPLOAD_MAX_MEMORY_SIZE."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


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
        refusal = Response(error_body(code=exc.code, message=exc.message, details=exc.details), status=exc.status)
        if exc.retry_after is not None:
            refusal["Retry-After"] = str(exc.retry_after)
        return refusal
    if isinstance(exc, DjangoValidationError):
        field_errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail=field_errors)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    details: Any
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        code, message = "validation_error", _first_message(details)
    else:
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        message, details = str(detail), {}
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled):
            # DRF formats the header with %d, which says "0" for a sub-second wait; clients then spin.
            seconds = max(1, math.ceil(wait)) if wait is not None else 1
            response["Retry-After"] = str(seconds)
            details = {"retry_after_seconds": seconds}
    if response.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        code = "request_too_large"
    response.data = error_body(code=str(code), message=message, details=details)
    return response


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def error_response(*, status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code=code, message=message), status=status_code)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's bad-request handler; a too-large body read outside DRF (e.g. by CSRF checks) is a 413."""
    if not is_api_request(request):
        return defaults.bad_request(request, exception)  # type: ignore[arg-type]
    if isinstance(exception, RequestDataTooBig):
        return error_response(status_code=413, code="request_too_large", message=RequestTooLarge.default_detail)
    return error_response(status_code=400, code="bad_request", message="The request could not be understood.")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_request(request):
        return defaults.page_not_found(request, exception)  # type: ignore[arg-type,unused-ignore]
    return error_response(status_code=404, code="not_found", message="Not found.")


def handler500(request: HttpRequest) -> HttpResponse:
    if not is_api_request(request):
        return defaults.server_error(request)
    return error_response(status_code=500, code="server_error", message="An unexpected error occurred.")


@csrf_exempt  # an unknown path is a 404 whatever the method; CSRF's HTML 403 would break the envelope
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Catch-all for unknown /api/ paths, so the envelope holds even with DEBUG on."""
    return handler404(request)
