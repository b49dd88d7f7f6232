"""A base for adapters of vendors without an official Python SDK: JSON over httpx, errors classified once."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from providers.base import ProviderTimeoutError, TransientError
from providers.support import PooledProvider, error_for_status, error_message, retry_after_seconds, shared_ssl_context


class JsonHttpProvider(PooledProvider[httpx.AsyncClient]):
    """A provider reached with plain JSON requests; subclasses say which paths and bodies.

    The client never retries on its own (httpx does not), so the engine's retry policy is the only one.
    """

    # Subclasses that authenticate with a bearer token set this; the header is sent only when a key is set.
    auth_scheme: ClassVar[str] = "Bearer"
    requires_base_url: ClassVar[bool] = True

    async def _close_client(self, client: httpx.AsyncClient) -> None:
        await client.aclose()

    def _new_client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"{self.auth_scheme} {self.api_key}"} if self.api_key else {}
        return httpx.AsyncClient(base_url=self.base_url.rstrip("/"), headers=headers, verify=shared_ssl_context())

    async def request_json(
        self, method: str, path: str, *, json: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> tuple[Any, httpx.Response]:
        """The decoded JSON answer and the response; any failure raised as a ProviderError."""
        try:
            response = await self.with_client(lambda client: client.request(method, path, json=json, timeout=timeout))
        except httpx.TimeoutException:
            raise ProviderTimeoutError(f"{self.label} did not answer within {timeout:g} s.") from None
        except httpx.HTTPError as exc:
            raise TransientError(f"Could not reach {self.label}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            message = f"{self.label} answered {response.status_code}: {error_message(body, response.text[:200])}"
            raise error_for_status(
                response.status_code, message, retry_after=retry_after_seconds(response.headers)
            ) from None
        if body is None:
            raise TransientError(f"{self.label} sent a malformed response (not JSON).")
        return body, response
