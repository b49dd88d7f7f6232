"""A base for adapters of servers without an official Python SDK: JSON over aiohttp, errors classified once.

aiohttp rather than httpx: at fifty calls in flight an httpx client costs ~5 ms of CPU per call, an
aiohttp session ~0.4 ms, and the engine is CPU-bound on one core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp
import orjson

from providers.base import ProviderTimeoutError, TransientError
from providers.errors import error_for_status, error_message, rate_limit_info, retry_after_seconds
from providers.pooling import PooledProvider, shared_ssl_context


class JsonHttpProvider(PooledProvider[aiohttp.ClientSession]):
    """A provider reached with plain JSON requests; subclasses say which paths and bodies.

    The client never retries on its own (aiohttp does not), so the engine's retry policy is the only one.
    """

    # Subclasses that authenticate with a bearer token set this; the header is sent only when a key is set.
    auth_scheme: ClassVar[str] = "Bearer"
    requires_base_url: ClassVar[bool] = True

    async def _close_client(self, client: aiohttp.ClientSession) -> None:
        await client.close()

    def _new_client(self) -> aiohttp.ClientSession:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"{self.auth_scheme} {self.api_key}"
        # No connection limit of its own: the engine's per-provider concurrency is the limit.
        connector = aiohttp.TCPConnector(limit=0, ssl=shared_ssl_context())
        return aiohttp.ClientSession(connector=connector, headers=headers)

    async def request_json(
        self, method: str, path: str, *, json: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> tuple[Any, Mapping[str, str]]:
        """The decoded JSON answer and the response headers; any failure raised as a ProviderError."""
        url = self.base_url.rstrip("/") + path
        data = orjson.dumps(json) if json is not None else None

        async def call(session: aiohttp.ClientSession) -> tuple[int, bytes, Mapping[str, str]]:
            async with session.request(
                method, url, data=data, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                return response.status, await response.read(), response.headers

        try:
            status, raw, headers = await self.with_client(call)
        except TimeoutError:  # aiohttp's timeouts are TimeoutErrors too; checked first
            raise ProviderTimeoutError(f"{self.label} did not answer within {timeout:g} s.") from None
        except aiohttp.ClientError as exc:
            raise TransientError(f"Could not reach {self.label}: {type(exc).__name__}.", detail=str(exc)) from None
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        if status >= 400:
            text = raw[:200].decode("utf-8", "replace")
            error = error_for_status(
                status, label=self.label, detail=error_message(body, text), retry_after=retry_after_seconds(headers)
            )
            error.rate_limit = rate_limit_info(headers)
            raise error from None
        if body is None:
            raise TransientError(f"{self.label} sent a malformed response (not JSON).")
        return body, headers
