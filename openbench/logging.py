"""Request ids for logs: one context variable that requests and background jobs both set."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def get_request_id() -> str:
    """The id of the request (or of the request that started this job), '' outside one."""
    return _request_id.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def request_id_context(request_id: str) -> Iterator[str]:
    """Run a block under a request id, so every log line in it carries that id."""
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record so the JSON formatter always has the field."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            # django.request logs a response after the middleware has returned: read the id off the request.
            request = getattr(record, "request", None)
            record.request_id = get_request_id() or getattr(request, "request_id", "")
        return True
