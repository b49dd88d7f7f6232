"""The one domain error that services raise; interfaces turn it into a 4xx."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A request that the domain refuses: a clear message, a stable code and an HTTP status."""

    # Seconds after which the same request may succeed (a temporary refusal); the API sends it as Retry-After.
    retry_after: int | None = None

    def __init__(
        self, message: str, *, code: str = "invalid", status: int = 400, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details or {}
