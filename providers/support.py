"""Small pieces every adapter shares: error classification by HTTP status, Retry-After, lenient JSON,
and network clients bound to the event loop that uses them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

from evaluations.scoring.extraction import extract_json
from providers.base import (
    HealthReport,
    PermanentError,
    Provider,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    TransientError,
)

ClientT = TypeVar("ClientT")

# Statuses worth another try besides 5xx: request timeout, conflict (OpenAI's advice), too early,
# and Anthropic's 529 "overloaded".
_TRANSIENT_STATUSES = {408, 409, 425}


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, or `retry-after` in seconds or as an HTTP date."""
    if not headers:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def error_for_status(status: int, message: str, *, retry_after: float | None = None) -> ProviderError:
    """The error class the engine needs for an HTTP status, whatever the vendor."""
    if status == 429:
        return RateLimitedError(message, status_code=status, retry_after=retry_after)
    if status == 408:
        return ProviderTimeoutError(message, status_code=status)
    if status >= 500 or status in _TRANSIENT_STATUSES:
        return TransientError(message, status_code=status, retry_after=retry_after)
    return PermanentError(message, status_code=status)


def error_message(body: Any, fallback: str) -> str:
    """The human part of a vendor's error body ({"error": {"message"}}, {"error": "..."}, ...), kept short."""
    message: Any = None
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping):
            message = error.get("message") or error.get("status")
        elif isinstance(error, str):
            message = error
        message = message or body.get("message")
    elif isinstance(body, str):
        message = body
    return str(message or fallback)[:500]


def parse_structured(text: str) -> Any:
    """The JSON value in an answer: strict first, then leniently (fenced block, first object/array)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    extracted = extract_json(text)
    return extracted.value if extracted.found else None


def estimate_tokens(*texts: str) -> int:
    """About four characters a token: the usual rule of thumb for English text."""
    return max(1, sum(len(text) for text in texts) // 4)


# httpcore's connection pool scans every connection for every queued request (quadratic in the pool
# size): one client with 50 busy connections spends more time bookkeeping than waiting on the network.
# Several clients with small pools, used in turn, keep that cost flat.
DEFAULT_CLIENT_SHARDS = 16


class LoopLocal(Generic[ClientT]):
    """Network clients bound to one event loop, handed out in turn.

    Async HTTP clients pool connections that belong to the loop that opened them. An adapter is
    usually used inside one loop for its life (the engine builds one per run), but a caller that
    runs several `asyncio.run`s (a management command, a test) must not reuse a dead loop's pool.
    """

    def __init__(
        self,
        factory: Callable[[], ClientT],
        closer: Callable[[ClientT], Awaitable[Any]],
        *,
        shards: int = DEFAULT_CLIENT_SHARDS,
    ) -> None:
        self._factory = factory
        self._closer = closer
        self._shards = max(1, shards)
        self._clients: list[ClientT] = []
        self._next = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> ClientT:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # The previous loop is gone (or never was): its connections cannot be closed from here.
            self._clients = []
            self._loop = loop
        if len(self._clients) < self._shards:
            client = self._factory()
            self._clients.append(client)
            return client
        self._next = (self._next + 1) % self._shards
        return self._clients[self._next]

    async def aclose(self) -> None:
        clients, self._clients = self._clients, []
        if self._loop is asyncio.get_running_loop():
            for client in clients:
                await self._closer(client)
        self._loop = None


def require_configured(provider: Provider) -> None:
    """For calls other than `generate` (which `Provider` guards already): fail cleanly when unconfigured."""
    if not provider.is_configured:
        raise ProviderUnavailableError(provider.unconfigured_reason())


async def probe_health(provider: Provider, check: Callable[[], Awaitable[str]]) -> HealthReport:
    """Time `check` (which returns a short detail) and turn any provider error into a failed report."""
    started = time.perf_counter()
    try:
        require_configured(provider)
        detail = await check()
    except ProviderError as exc:
        provider._scrub(exc)
        return HealthReport(ok=False, latency_ms=round((time.perf_counter() - started) * 1000), detail=exc.message)
    return HealthReport(ok=True, latency_ms=round((time.perf_counter() - started) * 1000), detail=detail)
