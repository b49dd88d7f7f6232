"""Request middleware: the request id (X-Request-ID in, and back on the response) and the database
statement timeout of web requests."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from openbench.api.exceptions import error_response, is_api_request
from openbench.logging import new_request_id, request_id_context

logger = logging.getLogger(__name__)

# A client-sent id is echoed into logs and headers, so accept only a safe shape.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Gives every request an id that follows it into logs, error bodies and background jobs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        with request_id_context(request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


# PostgreSQL's code for "canceling statement due to statement timeout" (and user cancel).
_QUERY_CANCELED = "57014"


class _StatementTimeout:
    """An execute wrapper that sets the timeout on the request's connection just before its first query.

    Lazy on purpose: a request that never touches the database (health, static files, a cached page)
    neither opens a connection nor pays a round trip for it.
    """

    def __init__(self, milliseconds: int) -> None:
        self.milliseconds = milliseconds
        self.applied = False

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if not self.applied:
            self.applied = True
            # The driver's cursor, not Django's: going through Django would run this wrapper again.
            context["cursor"].cursor.execute(f"SET statement_timeout = {int(self.milliseconds)}")
        return execute(sql, params, many, context)


def _reset_statement_timeout() -> None:
    """Give the connection back as non-web code expects it: no timeout (it may go back to a pool)."""
    if connection.connection is None:
        return
    try:
        # On the driver's connection, like the SET: neither is one of the request's queries (query counts,
        # debug logs and execute wrappers see only those).
        with connection.wrap_database_errors, connection.connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
    except DatabaseError:
        logger.warning("Could not reset statement_timeout; closing the connection instead.", exc_info=True)
        # A connection that may still carry the limit must not serve a worker: close it for real, so a
        # pool discards it instead of handing it out again.
        with contextlib.suppress(Exception):  # already broken: closing is all that is wanted
            connection.connection.close()
        connection.close()


class StatementTimeoutMiddleware:
    """On PostgreSQL, every query of a web request runs under DB_STATEMENT_TIMEOUT_MS (SPEC §10).

    The limit is set on the connection before the request's first query and reset when the response is
    closed (also after an error, and after a streamed body), before Django returns the connection to its
    pool or closes it; workers and management commands never pass here. A query cut by the limit answers
    503 (the error envelope under /api/, the error page elsewhere).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        milliseconds = int(getattr(settings, "DB_STATEMENT_TIMEOUT_MS", 0) or 0)
        if milliseconds <= 0 or connection.vendor != "postgresql":
            return self.get_response(request)
        wrapper = _StatementTimeout(milliseconds)
        try:
            with connection.execute_wrapper(wrapper):
                response = self.get_response(request)
        except BaseException:
            if wrapper.applied:
                _reset_statement_timeout()
            raise
        if wrapper.applied:
            # Reset when the response is closed: a streamed body still reads under the limit, and closing
            # comes before request_finished, which hands the connection back.
            # (Django's own hook for this: FileResponse closes its file the same way.)
            response._resource_closers.append(_reset_statement_timeout)  # type: ignore[attr-defined]
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not (isinstance(exception, OperationalError) and _is_query_canceled(exception)):
            return None
        logger.warning("A query of %s %s ran past DB_STATEMENT_TIMEOUT_MS.", request.method, request.path)
        if is_api_request(request):
            response: HttpResponse = error_response(
                status_code=503,
                code="statement_timeout",
                message="The database took too long to answer this request; try a narrower one.",
            )
        else:
            response = render(request, "500.html", status=503)
        response["Retry-After"] = "5"
        return response


def _is_query_canceled(exception: BaseException) -> bool:
    cause = exception.__cause__
    return getattr(cause, "sqlstate", None) == _QUERY_CANCELED or getattr(cause, "pgcode", None) == _QUERY_CANCELED
