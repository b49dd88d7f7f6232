"""Network clients for adapters: one TLS context for all, and per-event-loop pools of clients lent to
calls least-busy first, with the adapter base class (PooledProvider) built on them."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from providers.base import HealthReport, Provider
from providers.health import probe_health

ClientT = TypeVar("ClientT")
ResultT = TypeVar("ResultT")

# httpcore's connection pool scans every connection for every queued request (quadratic in the pool
# size): one client with 50 busy connections spends more time bookkeeping than waiting on the network.
# Several clients with small pools keep that cost flat; a new one is made only when the others are busy.
DEFAULT_CLIENT_SHARDS = 16
CALLS_PER_CLIENT = 4


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle costs ~100 ms, building a client then costs ~1 ms.

    What `httpx.create_ssl_context()` builds (SSL_CERT_FILE, SSL_CERT_DIR, else certifi's bundle), without
    importing httpx, which loads its CLI (rich, click: ~0.15 s, ~11 MB) that an aiohttp adapter never needs.
    """
    import certifi

    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())


class ClientPool(Generic[ClientT]):
    """Network clients bound to one event loop, lent to calls least-busy first.

    Async HTTP clients pool connections that belong to the loop that opened them. An adapter is
    usually used inside one loop for its life (the engine builds them per run), but a caller that
    runs several `asyncio.run`s (a management command, a test) must not reuse a dead loop's pool.
    """

    def __init__(
        self,
        factory: Callable[[], ClientT],
        closer: Callable[[ClientT], Awaitable[Any]],
        *,
        max_clients: int = DEFAULT_CLIENT_SHARDS,
    ) -> None:
        self._factory = factory
        self._closer = closer
        self._max_clients = max(1, max_clients)
        self._clients: list[ClientT] = []
        self._busy: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._clients)

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[ClientT]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # The previous loop is gone (or never was): its connections cannot be closed from here.
            self._clients, self._busy, self._loop = [], [], loop
        busy = self._busy
        index = min(range(len(busy)), key=busy.__getitem__) if busy else -1
        if index < 0 or (busy[index] >= CALLS_PER_CLIENT and len(busy) < self._max_clients):
            self._clients.append(self._factory())
            busy.append(0)
            index = len(busy) - 1
        busy[index] += 1
        try:
            yield self._clients[index]
        finally:
            busy[index] -= 1

    async def aclose(self) -> None:
        clients, self._clients, self._busy = self._clients, [], []
        if self._loop is asyncio.get_running_loop():
            for client in clients:
                await self._closer(client)
        self._loop = None


class PooledProvider(Provider, Generic[ClientT]):
    """An adapter that talks through a network client (a vendor SDK's, or httpx), made lazily per event
    loop and sharded (option `client_shards`). Its health check lists the models, which is cheap,
    authenticated, and offered by every vendor that has a listing."""

    def __init__(self, *, api_key: str = "", base_url: str = "", options: dict[str, Any] | None = None) -> None:
        super().__init__(api_key=api_key, base_url=base_url, options=options)
        self._clients: ClientPool[ClientT] = ClientPool(
            self._new_client,
            self._close_client,
            max_clients=int(self.options.get("client_shards", DEFAULT_CLIENT_SHARDS)),
        )

    @abc.abstractmethod
    def _new_client(self) -> ClientT:
        """A client with the vendor's own retries switched off: the engine retries."""

    @abc.abstractmethod
    async def _close_client(self, client: ClientT) -> None:
        """Close one client's connections."""

    @property
    def client_count(self) -> int:
        """Clients made so far in the current loop (grows with concurrency, up to `client_shards`)."""
        return len(self._clients)

    async def with_client(self, call: Callable[[ClientT], Awaitable[ResultT]]) -> ResultT:
        """Run `call` with a client lent from the pool (inside the running loop)."""
        async with self._clients.lease() as client:
            return await call(client)

    async def health(self) -> HealthReport:
        async def check() -> str:
            return f"{len(await self.list_models())} models listed"

        return await probe_health(self, check)

    async def aclose(self) -> None:
        await self._clients.aclose()
